// The other node of bench/artifacts.bench.ts, run as its own process: a mesh whose artifact store holds
// ROUNDS random artifacts of SIZE bytes, served over /noir/artifact/1.0.0, and a raw libp2p protocol that
// sends the same number of bytes from memory (the baseline). Prints one JSON line `{ multiaddrs, digests }`
// when ready; exits when stdin closes.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Libp2p } from '@libp2p/interface'
import { NodeKey } from '../identity/keys.ts'
import { Mesh } from '../p2p/mesh.ts'
import { ArtifactStore } from '../artifacts/store.ts'
import { SEND_CHUNK, serveArtifacts } from '../artifacts/protocol.ts'

export const RAW_BLOB_PROTOCOL = '/bench/blob/1.0.0'

if (import.meta.main) {
  const size = Number(process.argv[2])
  const rounds = Number(process.argv[3])
  const dir = mkdtempSync(join(tmpdir(), 'noir-artifact-peer-'))
  const mesh = await Mesh.create({ key: NodeKey.generate(), mdns: false, natTraversal: false, pingIntervalMs: 0 })
  await mesh.start()
  const host = mesh.host as unknown as Libp2p
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
  process.stdin.resume()
  process.stdin.once('end', () => {
    void (async () => {
      await mesh.stop()
      rmSync(dir, { recursive: true, force: true })
      process.exit(0)
    })()
  })
}
