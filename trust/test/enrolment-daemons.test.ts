// Enrolment with real daemons and Docker (spec/trust.md "Enrolment"): a validator (trust.enrol) measures each
// node it hears from against the capacity its bids claim. An honest node runs the benchmark in a job sized to
// its claim and passes; a node started to inflate its capacity 4x (NOIR_TEST_FAULTS=1, trust.testFaults
// .inflateCapacity) bids for its claim and cannot reserve it: flagged `inflated`, a strike, before any paid
// work. And the benchmark itself, in a real container: a claim of more cores than the container has does not
// scale, and is judged inflated.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { clusterFor, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import type { NodeTrustView } from '../book.ts'
import { enrolmentScript, judgeEnrolment, parseEnrolment } from '../enrolment.ts'

const IMAGE = 'noir/busybox:latest'
const trustOf = async (d: DaemonHandle, node: string): Promise<NodeTrustView | undefined> =>
  (await d.api.get<{ nodes: NodeTrustView[] }>('/v1/trust')).nodes.find((n) => n.node === node)

t.test('the benchmark in a real container: cores that are not there do not scale', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const run = (cpus: string, workers: number) => {
    const r = spawnSync('docker', ['run', '--rm', `--cpus=${cpus}`, '--label', 'noir.test=enrolment', IMAGE, 'sh', '-c', enrolmentScript(workers, 1)], { encoding: 'utf8', timeout: 60_000 })
    return parseEnrolment(r.stdout.split('\n'), workers)
  }
  const overClaimed = run('1', 4)
  t.ok(overClaimed, 'the benchmark prints its measure')
  t.ok(overClaimed!.efficiency < 0.5, `4 workers in 1 cpu do about the work of one (${overClaimed!.efficiency} of linear)`)
  t.equal(judgeEnrolment({ cpu: 4, memoryBytes: 1 << 30 }, overClaimed!, Date.now()).verdict, 'inflated', 'judged inflated')
  const one = run('1', 1)
  t.equal(judgeEnrolment({ cpu: 1, memoryBytes: 1 << 30 }, one!, Date.now()).verdict, 'passed', 'one core claimed, one there: passed')
  t.ok(one!.single > 0 && one!.total > 0, `it counted (${one!.single} rounds alone)`)
})

t.test('a validator enrols the nodes it hears from: the honest one passes, the inflating one is flagged', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const cluster = clusterFor(t)
  const share = 'cpu=1,memory=512MiB,disk=2GiB,gpu=0'
  const a = await cluster.start({ config: { share, trust: { enrol: true, enrolMs: 500, checkDeadlineMs: 30_000 } } as never })
  // B takes A's records: it keeps what A tells it of its enrolment; C does not
  const b = await cluster.start({ bootstrap: a.multiaddrs, config: { share, trust: { validators: [a.did] } } as never })
  const c = await cluster.start({
    bootstrap: a.multiaddrs, env: { NOIR_TEST_FAULTS: '1' },
    config: { share, trust: { testFaults: { inflateCapacity: 4 } } } as never,
  })

  const honest = await eventually(async () => (await trustOf(a, b.did))?.enrolment ?? undefined, 90_000, 250)
  t.equal(honest.verdict, 'passed', `the honest node passes: ${honest.reason}`)
  t.equal(honest.claimed.cpu, 1, 'it claimed its one cpu')
  t.ok(honest.measured && honest.measured.workers === 1 && honest.measured.single > 0, 'and ran the benchmark in a job sized to its claim')
  interface OwnTrust { thisNode: { enrolments: { validator: string; verdict: string; at: number }[] } }
  const told = await eventually(async () => (await b.api.get<OwnTrust>('/v1/trust')).thisNode.enrolments[0], 30_000, 250)
  t.same([told.validator, told.verdict, told.at], [a.did, 'passed', honest.at], 'the node was told its enrolment, signed by the validator, and keeps it (its console shows it)')

  const liar = await eventually(async () => (await trustOf(a, c.did))?.enrolment ?? undefined, 90_000, 250)
  t.equal(liar.verdict, 'inflated', `the inflating node is flagged: ${liar.reason}`)
  t.equal(liar.claimed.cpu, 4, 'its bid claimed 4 cpu (its share is 1)')
  t.equal(liar.measured, null, 'it could not even reserve what it bid for')
  t.same((await c.api.get<OwnTrust>('/v1/trust')).thisNode.enrolments, [], 'a node that does not take the validator\'s records keeps none of its reports')
  const view = (await trustOf(a, c.did))!
  t.equal(view.strikes, 1, 'a strike, before any paid work')
  t.equal(view.invalid, 1)
  t.ok(view.history.some((h) => h.by === 'enrolment' && h.event === 'invalid'), 'the history says it was the enrolment')
  t.equal((await trustOf(a, b.did))!.strikes, 0, 'the honest node has none')

  // the enrolment job was paid like any paid run (spec/trust.md "Paid check runs"): the honest node's usage
  // record of it answered by the validator and paid out of its wallet, on both sides
  interface UsageDoc { records: { side: string; status: string; settled: string | null; record: { body: { provider: string; consumer: string; final?: boolean; amount: string } } }[] }
  const paid = await eventually(async () => {
    const u = await a.api.get<UsageDoc>('/v1/usage?side=consumer')
    const mine = u.records.filter((r) => r.record.body.provider === b.did)
    return mine.some((r) => r.record.body.final === true && r.settled !== null) && mine
  }, 60_000, 300)
  t.ok(paid.every((r) => r.status === 'accepted'), `the validator accepted the honest node's usage record(s) of its enrolment job (${paid.map((r) => `${r.status}/${r.settled}`).join(', ')})`)
  t.ok(paid.some((r) => r.settled === 'paid' && BigInt(r.record.body.amount) > 0n), 'and paid it')
  const earned = await eventually(async () => {
    const u = await b.api.get<UsageDoc>('/v1/usage?side=provider')
    const of = u.records.filter((r) => r.record.body.consumer === a.did && r.record.body.final === true)
    return of.some((r) => r.settled === 'paid') && of
  }, 60_000, 300)
  t.ok(earned.length > 0, 'the honest node was credited for it, as for paid work')

  // `noir trust show` says it
  const { execFile } = await import('node:child_process')
  const { NOIR_BIN } = await import('../../scripts/testing/daemons.ts')
  const show = await new Promise<string>((resolve, reject) => execFile(process.execPath, [NOIR_BIN, '--home', a.home, 'trust', 'show', c.did], { encoding: 'utf8', timeout: 60_000 }, (err, out) => (err ? reject(err) : resolve(out))))
  t.match(show, /enrolment inflated .*claimed 4 cpu, 2048 MiB; bid for 4 cpu/, 'noir trust show prints the enrolment')
  // a node not enrolled by a validator without `trust.enrol`: B measured nobody
  t.equal((await trustOf(b, c.did))?.enrolment ?? null, null, 'a node that did not opt in measures nobody')
  // the enrolment asked by hand, through the API: a node DID only
  await t.rejects(a.api.post('/v1/trust/nodes/not-a-did/enrol'), { name: 'UnknownNodeError' }, 'an enrolment asked by hand of something that is not a node DID is refused')
})
