// The one-core baseline of the p2p bench: node:crypto Ed25519 verifications per second, here or on several
// threads at once (this module is also the threads' code).
import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { parentPort, Worker, workerData } from 'node:worker_threads'

/** Ed25519 verifications per second on this thread, over about `ms`. */
export function verifyRate(ms = 1000): number {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const msg = Buffer.alloc(200, 7)
  const sig = sign(null, msg, privateKey)
  let n = 0
  const end = performance.now() + ms
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) verify(null, msg, publicKey, sig)
    n += 100
  }
  return n / (ms / 1000)
}

/** The total of `verifyRate` run on `threads` threads at once: what a machine's further cores add. */
export async function verifyRateOnThreads(threads: number, ms = 1000): Promise<number> {
  const rates = await Promise.all(Array.from({ length: threads }, () => new Promise<number>((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { verifyRateMs: ms } })
    w.once('message', (rate: number) => resolve(rate))
    w.once('error', reject)
  })))
  return rates.reduce((a, b) => a + b, 0)
}

const job = workerData as { verifyRateMs?: number } | null
if (parentPort !== null && typeof job?.verifyRateMs === 'number') parentPort.postMessage(verifyRate(job.verifyRateMs))
