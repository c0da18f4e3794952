// An SDK actor allocation on a real node daemon (a separate `noir node start` process) answers an ask sent
// by ANOTHER daemon over the libp2p mesh, at `<nodeDid>/alloc/<id>/workload`; its behaviors keep their
// abilities there, and its sandbox refusals reach the remote caller as typed errors.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { DaemonCluster, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'

const counter = fileURLToPath(new URL('../../examples/counter/counter.ts', import.meta.url))
const probe = fileURLToPath(new URL('./fixtures/actor/probe.ts', import.meta.url))
const cluster = new DaemonCluster()
t.teardown(() => cluster.cleanup())

interface Alloc {
  id: string
  state: string
  reason?: string | null
}

const failure = async (p: Promise<unknown>): Promise<{ name: string; message: string }> => {
  try {
    await p
  } catch (err) {
    return err as { name: string; message: string }
  }
  throw new Error('expected a failure')
}

async function runningAllocation(a: DaemonHandle, id: string, bundle: string): Promise<void> {
  await a.api.post<Alloc>('/v1/allocations', { id, runtime: { kind: 'actor', bundle }, resources: { cpu: 0.5, memory: '192MiB' } })
  let last: Alloc | undefined
  try {
    await eventually(async () => (last = await a.api.get<Alloc>(`/v1/allocations/${id}`)).state === 'running', 30_000)
  } catch (err) {
    throw new Error(`allocation ${id} did not run: ${JSON.stringify(last)}`, { cause: err })
  }
}

t.test('another daemon asks an SDK actor allocation across the mesh; capabilities and the sandbox hold', async (t) => {
  const a = await cluster.start({ config: { share: 'cpu=2,memory=1GiB,disk=1GiB,gpu=0' } })
  const b = await cluster.start({ bootstrap: a.multiaddrs })
  await runningAllocation(a, 'counter-1', counter)
  const addr = `${a.did}/alloc/counter-1/workload`
  const ask = (to: string, behavior: string, body: unknown = null) =>
    b.api.post<{ reply: unknown }>('/v1/actor/send', { to, behavior, body, ask: true, timeoutMs: 15_000 })

  await eventually(async () => (await ask(addr, '/counter/get').catch(() => ({ reply: undefined }))).reply === 0, 20_000)
  t.same(await ask(addr, '/counter/get'), { reply: 0 }, 'daemon B reads the counter running in daemon A\'s sandbox')
  const denied = await failure(ask(addr, '/counter/increment', { by: 1 }))
  t.equal(denied.name, 'CapabilityDeniedError', 'incrementing needs a capability daemon B does not hold')

  await runningAllocation(a, 'probe-1', probe)
  const refused = await failure(ask(`${a.did}/alloc/probe-1/workload`, '/probe/read', { path: '/etc/hostname' }))
  t.equal(refused.name, 'SandboxAccessDeniedError', 'a file outside its state directory is refused, and daemon B is told why')

  const stopped = await a.api.post<Alloc>('/v1/allocations/counter-1/stop', { graceMs: 5000 })
  t.ok(['stopping', 'stopped'].includes(stopped.state), `the allocation stops (${stopped.state})`)
})
