// A bare libp2p process for bench/artifacts.bench.ts: no daemon, but its mesh made from a daemon's default
// config (appliance/daemon/mesh-options.ts, the same libp2p stack as every Mesh) and the daemon's V8 heap
// setting (appliance/daemon/heap-limits.ts), so a daemon and this differ only in being a daemon.
//
//   artifact-peer.ts holder SIZE ROUNDS   an artifact store holding ROUNDS random artifacts of SIZE bytes,
//                                         served over /noir/artifact/1.0.0, and RAW_BLOB_PROTOCOL, which sends
//                                         SIZE bytes from memory on a bare stream (the baseline)
//   artifact-peer.ts fetcher              reads RAW_BLOB_PROTOCOL streams: for each stdin line
//                                         `{"from":"<multiaddr>","bytes":N}` prints `{"ms":...}` (N bytes read)
//                                         or `{"error":"..."}`
//
// Each prints one JSON line `{ multiaddrs, digests? }` when ready and exits when stdin closes.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { NodeKey } from '../identity/keys.ts'
import { Mesh } from '../p2p/mesh.ts'
import { ArtifactStore } from '../artifacts/store.ts'
import { SEND_CHUNK, serveArtifacts } from '../artifacts/protocol.ts'
import { defaultConfig } from '../appliance/daemon/config.ts'
import { meshOptionsOf } from '../appliance/daemon/mesh-options.ts'
import { countBuffersInHeapLimit } from '../appliance/daemon/heap-limits.ts'

export const RAW_BLOB_PROTOCOL = '/bench/blob/1.0.0'

/** A mesh as a daemon with the default config makes it (mDNS off, as the bench's daemons have it). */
export async function daemonLikeMesh(): Promise<Mesh> {
  const mesh = await Mesh.create({ key: NodeKey.generate(), ...meshOptionsOf({ ...defaultConfig(), mdns: false }) })
  await mesh.start()
  return mesh
}

/** Reads one raw stream to its end; the bytes read. */
export async function readRaw(host: Libp2p, peer: Parameters<Libp2p['dialProtocol']>[0]): Promise<number> {
  const s = await host.dialProtocol(peer, RAW_BLOB_PROTOCOL)
  let n = 0
  for await (const c of s) n += c.byteLength
  return n
}

if (import.meta.main) {
  countBuffersInHeapLimit()
  const role = process.argv[2]
  const mesh = await daemonLikeMesh()
  const host = mesh.host as unknown as Libp2p
  const cleanups: Array<() => void> = []
  if (role === 'holder') {
    const size = Number(process.argv[3])
    const rounds = Number(process.argv[4])
    const dir = mkdtempSync(join(tmpdir(), 'noir-artifact-peer-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const store = new ArtifactStore({ dir })
    const digests: string[] = []
    for (let i = 0; i < rounds; i++) digests.push(await store.putBytes(randomBytes(size)))
    await serveArtifacts(host, store)
    const chunk = randomBytes(SEND_CHUNK)
    // the same bytes on a bare stream: no store, no file, no header, no hash
    await host.handle(RAW_BLOB_PROTOCOL, async (stream) => {
      for (let sent = 0; sent < size; sent += chunk.length) {
        if (!stream.send(chunk.subarray(0, Math.min(chunk.length, size - sent)))) await stream.onDrain()
      }
      await stream.close()
    })
    process.stdout.write(JSON.stringify({ multiaddrs: mesh.multiaddrs(), digests }) + '\n')
  } else if (role === 'fetcher') {
    process.stdout.write(JSON.stringify({ multiaddrs: mesh.multiaddrs() }) + '\n')
    createInterface({ input: process.stdin }).on('line', (l) => {
      void (async () => {
        const ask = JSON.parse(l) as { from: string; bytes: number }
        const t0 = performance.now()
        try {
          const n = await readRaw(host, multiaddr(ask.from))
          if (n !== ask.bytes) throw new Error(`raw stream: ${n} of ${ask.bytes} bytes`)
          process.stdout.write(JSON.stringify({ ms: performance.now() - t0 }) + '\n')
        } catch (err) {
          process.stdout.write(JSON.stringify({ error: (err as Error).message }) + '\n')
        }
      })()
    })
  } else {
    throw new Error(`artifact-peer: role must be holder or fetcher, not ${role}`)
  }
  process.stdin.resume()
  process.stdin.once('end', () => {
    void (async () => {
      await mesh.stop()
      for (const c of cleanups) c()
      process.exit(0)
    })()
  })
}
