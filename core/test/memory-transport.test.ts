import t from 'tap'
import { NodeKey } from '../../identity/index.ts'
import { MemoryNetwork } from '../index.ts'
import { runTransportCompliance } from './transport-compliance.ts'

t.test('the memory transport passes the transport compliance suite', async (t) => {
  runTransportCompliance(t, async () => {
    const net = new MemoryNetwork()
    const a = net.transport(NodeKey.generate().did)
    const b = net.transport(NodeKey.generate().did)
    await a.start()
    await b.start()
    return [a, b, async () => { await a.stop(); await b.stop() }]
  })
})

t.test('a memory transport that is not started can neither send nor be reached', async (t) => {
  const net = new MemoryNetwork()
  const a = net.transport(NodeKey.generate().did)
  const b = net.transport(NodeKey.generate().did)
  await b.start()
  await t.rejects(a.send(b.localDid, new Uint8Array(1)), { name: 'UnreachableError' })
  await a.start()
  await b.stop()
  await t.rejects(a.send(b.localDid, new Uint8Array(1)), { name: 'UnreachableError' })
  await a.stop()
})
