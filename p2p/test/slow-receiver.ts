// A receiving node in its own process that consumes frames slowly (busy work per frame), so a fast sender
// fills the muxer's send window. Prints `{ did, multiaddrs }`, then answers each stdin line with the count.
import { createInterface } from 'node:readline'
import { NodeKey } from '../../identity/keys.ts'
import { Mesh } from '../mesh.ts'

const key = NodeKey.generate()
const mesh = await Mesh.create({ key, mdns: false, natTraversal: false, pingIntervalMs: 0 })
await mesh.start()
let count = 0
mesh.transport.onEnvelope(() => {
  count++
  const until = performance.now() + 0.02
  while (performance.now() < until) {
    // 20 µs of work per frame
  }
})
process.stdout.write(JSON.stringify({ did: key.did, multiaddrs: mesh.multiaddrs() }) + '\n')
const rl = createInterface({ input: process.stdin })
rl.on('line', () => process.stdout.write(JSON.stringify({ count }) + '\n'))
rl.on('close', () => void mesh.stop().then(() => process.exit(0)))
