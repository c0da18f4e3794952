// Enrolment with real daemons and Docker (spec/trust.md "Enrolment"): a validator (trust.enrol) measures each
// node it hears from against the capacity its bids claim. An honest node runs the benchmark in a job sized to
// its claim and passes, with its memory and disk figures; a node started to inflate its capacity 4x
// (NOIR_TEST_FAULTS=1, trust.testFaults.inflateCapacity) bids for its claim and cannot reserve it: flagged
// `inflated`, a strike, before any paid work; a node that claims and reserves 4x its memory while its
// containers get what it has (testFaults.shortMemory) cannot write the memory it claims: inflated (memory).
// And the benchmark itself, in real containers: a claim of more cores than the container has does not scale,
// a container held below the memory claimed or a /state smaller than the disk written fails the write.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { clusterFor, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import type { NodeTrustView } from '../book.ts'
import { enrolmentPlan, enrolmentScript, judgeEnrolment, parseEnrolment } from '../enrolment.ts'
import { shmBytes } from '../../appliance/executor/docker/docker-executor.ts'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const IMAGE = 'noir/busybox:latest'
const trustOf = async (d: DaemonHandle, node: string): Promise<NodeTrustView | undefined> =>
  (await d.api.get<{ nodes: NodeTrustView[] }>('/v1/trust')).nodes.find((n) => n.node === node)

t.test('the benchmark in a real container: cores that are not there do not scale', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const run = (cpus: string, workers: number) => {
    const plan = { workers, seconds: 1, memoryMiB: 0, diskMiB: 0 }
    const r = spawnSync('docker', ['run', '--rm', `--cpus=${cpus}`, '--label', 'noir.test=enrolment', IMAGE, 'sh', '-c', enrolmentScript(plan)], { encoding: 'utf8', timeout: 60_000 })
    return parseEnrolment(r.stdout.split('\n'), plan)
  }
  const overClaimed = run('1', 4)
  t.ok(overClaimed.efficiency < 0.5, `4 workers in 1 cpu do about the work of one (${overClaimed.efficiency} of linear)`)
  t.equal(judgeEnrolment({ cpu: 4, memoryBytes: 1 << 30 }, overClaimed, Date.now()).verdict, 'inflated', 'judged inflated')
  const one = run('1', 1)
  t.equal(judgeEnrolment({ cpu: 1, memoryBytes: 1 << 30 }, one, Date.now()).verdict, 'passed', 'one core claimed, one there: passed')
  t.ok(one.single > 0 && one.total > 0, `it counted (${one.single} rounds alone)`)
})

t.test('the benchmark in a real container: memory and disk that are not there are not written', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const MiB = 2 ** 20
  // as the docker executor runs a job: read-only root, a small /tmp, /dev/shm of the memory limit less 32 MiB,
  // the job's state folder at /state, no capabilities; `memory` is the container's limit, `claim` what the node claims
  const run = (memory: number, claim: { memoryBytes: number; diskBytes: number }, state: string[], shm = shmBytes(memory)) => {
    const plan = enrolmentPlan({ cpu: 1, ...claim }, { seconds: 0.2, diskCapBytes: 64 * MiB })
    const r = spawnSync('docker', ['run', '--rm', '--label', 'noir.test=enrolment', '--cpus=1', `--memory=${memory}`, `--memory-swap=${memory}`, `--shm-size=${shm}`,
      '--read-only', '--tmpfs', '/tmp:size=16m', '--cap-drop=ALL', '--security-opt=no-new-privileges', ...state, IMAGE, 'sh', '-c', enrolmentScript(plan)], { encoding: 'utf8', timeout: 60_000 })
    return { plan, e: judgeEnrolment({ cpu: 1, ...claim }, parseEnrolment(r.stdout.split('\n'), plan), Date.now()) }
  }
  const dir = mkdtempSync(join(tmpdir(), 'noir-enrol-state-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bind = ['-v', `${dir}:/state:rw`]
  const claim = { memoryBytes: 256 * MiB, diskBytes: 2 ** 30 }

  const honest = run(256 * MiB, claim, bind)
  t.equal(honest.e.verdict, 'passed', `a container that has what is claimed passes: ${honest.e.reason}`)
  t.same([honest.plan.memoryMiB, honest.plan.diskMiB], [224, 64], 'it wrote the claim less the headroom to memory, the disk cap to disk')
  const m = honest.e.measured!
  t.ok(m.memory && m.memory.written === 224 && m.memory.read === 224 && m.memory.intact && m.memory.writeMiBps > 0 && m.memory.readMiBps > 0, 'memory written, read back whole, at a rate')
  t.ok(m.disk && m.disk.written === 64 && m.disk.read === 64 && m.disk.intact && m.disk.writeMiBps > 0, 'disk written, fsynced, read back whole, at a rate')
  t.comment(`memory 224 MiB: ${m.memory!.writeMiBps} MiB/s written, ${m.memory!.readMiBps} read; disk 64 MiB: ${m.disk!.writeMiBps} MiB/s written with fsync, ${m.disk!.readMiBps} read (${m.disk!.direct ? 'O_DIRECT' : 'page cache'})`)

  // a node claiming 256 MiB free whose container is held to 128 MiB: its /dev/shm fills at 96 MiB
  const short = run(128 * MiB, claim, bind)
  t.same([short.e.verdict, short.e.failed], ['inflated', ['memory']], `a container that cannot hold the memory claimed is inflated (memory): ${short.e.reason}`)
  t.ok(short.e.measured!.memory!.written < 224, `it wrote ${short.e.measured!.memory!.written} of 224 MiB`)
  // a node whose executor leaves Docker's 64 MiB /dev/shm (a version before the sizing), its limit the claim: not measured, not failed
  const older = run(256 * MiB, claim, bind, 64 * MiB)
  t.equal(older.e.verdict, 'passed', `an honest node without the /dev/shm sizing is not flagged: ${older.e.reason}`)
  t.match(older.e.reason, /memory not measured: a \/dev\/shm of 64 MiB/)

  // a disk that is not there: /state 32 MiB (a tmpfs) under a claim of 1 GiB: ENOSPC half way
  const full = run(256 * MiB, claim, ['--tmpfs', '/state:size=32m'])
  t.same([full.e.verdict, full.e.failed], ['inflated', ['disk']], `a disk that fills before the bounded file is written is inflated (disk): ${full.e.reason}`)
  t.ok(full.e.measured!.disk!.written < 64, `it wrote ${full.e.measured!.disk!.written} of 64 MiB`)

  // no writable /state (a daemon whose state folders the container's root may not write): disk not measured, not failed
  const none = run(256 * MiB, claim, [])
  t.equal(none.e.verdict, 'passed', 'no writable /state: passed on cpu and memory')
  t.equal(none.e.measured!.disk, undefined, 'no writable /state: disk not measured')
})

t.test('a validator enrols the nodes it hears from: the honest one passes, the inflating and the memory-short ones are flagged', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const cluster = clusterFor(t)
  const share = 'cpu=1,memory=512MiB,disk=2GiB,gpu=0'
  const MiB = 2 ** 20
  const a = await cluster.start({ config: { share, trust: { enrol: true, enrolMs: 500, enrolMemoryBytes: 256 * MiB, enrolDiskBytes: 64 * MiB, checkDeadlineMs: 30_000 } } as never })
  // B takes A's records: it keeps what A tells it of its enrolment; C does not
  const b = await cluster.start({ bootstrap: a.multiaddrs, config: { share, trust: { validators: [a.did] } } as never })
  const c = await cluster.start({
    bootstrap: a.multiaddrs, env: { NOIR_TEST_FAULTS: '1' },
    config: { share, trust: { testFaults: { inflateCapacity: 4 } } } as never,
  })
  // D claims and reserves 4 times its 128 MiB (its allocator believes it), and its containers get 128 MiB
  const d = await cluster.start({
    bootstrap: a.multiaddrs, env: { NOIR_TEST_FAULTS: '1' },
    config: { share: 'cpu=1,memory=128MiB,disk=2GiB,gpu=0', trust: { testFaults: { shortMemory: 4 } } } as never,
  })

  const honest = await eventually(async () => (await trustOf(a, b.did))?.enrolment ?? undefined, 90_000, 250)
  t.equal(honest.verdict, 'passed', `the honest node passes: ${honest.reason}`)
  t.equal(honest.claimed.cpu, 1, 'it claimed its one cpu')
  t.ok(honest.measured && honest.measured.workers === 1 && honest.measured.single > 0, 'and ran the benchmark in a job sized to its claim')
  const hm = honest.measured!
  t.ok(hm.memory && hm.memory.mib === 256 && hm.memory.written === 256 && hm.memory.read === 256 && hm.memory.intact, 'it wrote 256 MiB (the cap) into its container\'s memory and read them back')
  t.ok(hm.disk && hm.disk.mib === 64 && hm.disk.written === 64 && hm.disk.read === 64 && hm.disk.intact, 'and 64 MiB to its disk, fsynced')
  t.comment(`the honest node: ${honest.reason}`)
  interface OwnTrust { thisNode: { enrolments: { validator: string; verdict: string; at: number }[] } }
  const told = await eventually(async () => (await b.api.get<OwnTrust>('/v1/trust')).thisNode.enrolments[0], 30_000, 250)
  t.same([told.validator, told.verdict, told.at], [a.did, 'passed', honest.at], 'the node was told its enrolment, signed by the validator, and keeps it (its console shows it)')
  t.same((told as unknown as { measured: unknown }).measured, honest.measured, 'with the memory and disk figures')

  const short = await eventually(async () => (await trustOf(a, d.did))?.enrolment ?? undefined, 90_000, 250)
  t.same([short.verdict, short.failed], ['inflated', ['memory']], `a node whose containers cannot hold the memory it claims is flagged (memory): ${short.reason}`)
  t.equal(short.claimed.memoryBytes, 512 * MiB, 'it claimed 512 MiB (its share is 128)')
  t.ok(short.measured?.memory && short.measured.memory.written < 256, `its container, limited to what it has, held ${short.measured?.memory?.written} of the 256 MiB written`)
  t.equal((await trustOf(a, d.did))!.strikes, 1, 'a strike, before any paid work')

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
  t.match(show, /enrolment inflated \(reservation\) .*claimed 4 cpu, 2048 MiB, 8192 MiB disk; bid for 4 cpu/, 'noir trust show prints the enrolment')
  const shown = await new Promise<string>((resolve, reject) => execFile(process.execPath, [NOIR_BIN, '--home', a.home, 'trust', 'show', b.did], { encoding: 'utf8', timeout: 60_000 }, (err, out) => (err ? reject(err) : resolve(out))))
  t.match(shown, /measured {2}cpu 1 worker\(s\) at [\d.]+ of linear; memory 256\/256 MiB written at \d+ MiB\/s, 256 read back at \d+ MiB\/s; disk 64\/64 MiB written/, 'and the memory and disk figures')
  // a node not enrolled by a validator without `trust.enrol`: B measured nobody
  t.equal((await trustOf(b, c.did))?.enrolment ?? null, null, 'a node that did not opt in measures nobody')
  // the enrolment asked by hand, through the API: a node DID only
  await t.rejects(a.api.post('/v1/trust/nodes/not-a-did/enrol'), { name: 'UnknownNodeError' }, 'an enrolment asked by hand of something that is not a node DID is refused')
})
