// Hashing off the fetch's hot path (spec/artifacts.md "Protocol"): a worker thread reads a file that is being
// written, as far as the writer says it has written, and hashes it, so the thread that runs the stream,
// Noise and yamux only writes. The bytes are read back from the page cache, never transferred between threads.
import { Worker } from 'node:worker_threads'

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { openSync, readSync, closeSync } = require('node:fs')
const { createHash } = require('node:crypto')
const fd = openSync(workerData.path, 'r')
const hash = createHash('sha256')
const buf = Buffer.allocUnsafe(1 << 20)
let done = 0
parentPort.on('message', (m) => {
  while (done < m.upTo) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, m.upTo - done), done)
    if (n === 0) break
    hash.update(buf.subarray(0, n))
    done += n
  }
  if (m.end) {
    closeSync(fd)
    parentPort.postMessage({ digest: 'sha256:' + hash.digest('hex'), bytes: done })
  }
})
`

/** Hashes the file at `path` as it grows: `written(n)` after each write lands, `digest(total)` at the end. */
export class FileHasher {
  readonly #worker: Worker
  readonly #result: Promise<{ digest: string; bytes: number }>

  constructor(path: string) {
    this.#worker = new Worker(WORKER, { eval: true, workerData: { path } })
    this.#worker.unref()
    this.#result = new Promise((resolve, reject) => {
      this.#worker.once('message', resolve)
      this.#worker.once('error', reject)
    })
  }

  written(upTo: number): void {
    this.#worker.postMessage({ upTo })
  }

  async digest(total: number): Promise<{ digest: string; bytes: number }> {
    this.#worker.postMessage({ upTo: total, end: true })
    try {
      return await this.#result
    } finally {
      void this.#worker.terminate()
    }
  }

  close(): void {
    void this.#worker.terminate()
  }
}
