// The libp2p Transport passes core's transport compliance suite (the same suite as the memory transport).
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { runTransportCompliance } from '../../core/test/transport-compliance.ts'
import { Mesh } from '../mesh.ts'

t.test('the libp2p transport passes the transport compliance suite', async (t) => {
  runTransportCompliance(t, async () => {
    const opts = { mdns: false, natTraversal: false, pingIntervalMs: 0 }
    const a = await Mesh.create({ key: NodeKey.generate(), ...opts })
    await a.start()
    const b = await Mesh.create({ key: NodeKey.generate(), ...opts, bootstrap: a.multiaddrs() })
    await b.start()
    return [a.transport, b.transport, async () => {
      await b.stop()
      await a.stop()
    }]
  })
})
