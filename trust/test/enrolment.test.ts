// The enrolment verdicts (trust/enrolment.ts) and what they do to a node's record (trust/book.ts).
import t from 'tap'
import { enrolmentPlan, enrolmentScript, enrolmentWorkers, judgeEnrolment, memoryKilled, parseEnrolment, refusedClaim, ENROL_DISK_CAP_BYTES, ENROL_MAX_WORKERS, ENROL_MEMORY_CAP_BYTES, ENROL_MEMORY_HEADROOM_BYTES, type EnrolmentStore } from '../enrolment.ts'
import { EnrolmentOutputError } from '../errors.ts'
import { TrustBook } from '../book.ts'
import { defaultTrustPolicy } from '../policy.ts'

const plan = { workers: 4, memoryMiB: 0, diskMiB: 0 }
const MEM = 'enrolment memory mib=256 written=256 read=256 check=ok write_cs=20 read_cs=5 room_kib=294912 limit=335544320'
const DISK = 'enrolment disk mib=64 written=64 read=64 check=ok write_cs=10 read_cs=4 direct=1'

t.test('the measure is read from the benchmark\'s own lines only', async (t) => {
  t.same(parseEnrolment(['noise', 'enrolment single=100 total=380 workers=4'], plan), { single: 100, total: 380, workers: 4, efficiency: 0.95 })
  t.same(parseEnrolment(['enrolment single=100 total=380 workers=4', MEM, 'Killed', DISK], { workers: 4, memoryMiB: 256, diskMiB: 64 }), {
    single: 100, total: 380, workers: 4, efficiency: 0.95,
    memory: { mib: 256, written: 256, read: 256, intact: true, writeMiBps: 1280, readMiBps: 5120, roomBytes: 288 * 2 ** 20, limitBytes: 320 * 2 ** 20 },
    disk: { mib: 64, written: 64, read: 64, intact: true, writeMiBps: 640, readMiBps: 1600, direct: true },
  }, 'memory and disk: MiB/s from the centiseconds timed')
  t.same(parseEnrolment(['enrolment single=1 total=1 workers=1', 'enrolment disk unavailable'], { workers: 1, memoryMiB: 0, diskMiB: 64 }), { single: 1, total: 1, workers: 1, efficiency: 1 },
    'no writable /state in the container: disk not measured (absent), not failed')
  t.same(parseEnrolment(['enrolment single=1 total=1 workers=1', 'enrolment memory mib=256 written=96 read=0 check=bad write_cs=0 read_cs=0 room_kib=-1 limit=9223372036854771712'], { workers: 1, memoryMiB: 256, diskMiB: 0 }).memory,
    { mib: 256, written: 96, read: 0, intact: false, writeMiBps: 9600, readMiBps: 0 }, 'a short write is a measure (judged below); 0 cs counts as 1; room not known, no limit (cgroup v1\'s none)')
})

t.test('output that is not a measure for the plan is EnrolmentOutputError, never a pass', async (t) => {
  const cpu = 'enrolment single=100 total=380 workers=4'
  const both = { workers: 4, memoryMiB: 256, diskMiB: 64 }
  const bad: [string[], typeof both, string][] = [
    [['enrolment single=100 total=380 workers=8'], plan, 'a line for another number of workers'],
    [['enrolment single=0 total=0 workers=4'], plan, 'nothing counted'],
    [['enrolment single=1e9 total=1 workers=4'], plan, 'digits only'],
    [[], plan, 'no output'],
    [[cpu, cpu], plan, 'the cpu line twice'],
    [[cpu, DISK], both, 'no memory line'],
    [[cpu, MEM], both, 'no disk line'],
    [[cpu, MEM, MEM, DISK], both, 'the memory line twice'],
    [[cpu, MEM.replace('mib=256', 'mib=128'), DISK], both, 'a memory line for another amount'],
    [[cpu, MEM.replace('written=256', 'written=512'), DISK], both, 'more written than asked'],
    [[cpu, MEM.replace('read=256', 'read=-1'), DISK], both, 'a negative read'],
    [[cpu, MEM.replace('check=ok', 'check=fine'), DISK], both, 'an unknown check'],
    [[cpu, MEM, DISK.replace(' direct=1', '')], both, 'a disk line without its direct flag'],
    [[cpu, MEM + ' direct=1', DISK], both, 'a memory line with one'],
    [[cpu, MEM.replace(/ room_kib.*$/, ''), DISK], both, 'a memory line without its room and limit'],
    [[cpu, MEM, DISK.replace(' direct=1', ' room_kib=1 limit=max')], both, 'a disk line with them'],
    [[cpu, MEM, DISK], plan, 'memory and disk that were not asked for'],
    [[cpu, 'enrolment memory lots', DISK], both, 'a benchmark line that is not one'],
  ]
  for (const [lines, p, why] of bad) t.throws(() => parseEnrolment(lines, p), EnrolmentOutputError, why)
})

t.test('the plan: memory below the claim by the headroom, both bounded by their caps', async (t) => {
  const MiB = 2 ** 20
  t.same(enrolmentPlan({ cpu: 2.5, memoryBytes: 64 * 2 ** 30, diskBytes: 100 * 2 ** 30 }, { seconds: 1 }), { workers: 2, seconds: 1, memoryMiB: ENROL_MEMORY_CAP_BYTES / MiB, diskMiB: ENROL_DISK_CAP_BYTES / MiB }, 'a large claim is measured up to the caps')
  t.same(enrolmentPlan({ cpu: 1, memoryBytes: 512 * MiB, diskBytes: 10 * MiB }, { seconds: 1 }), { workers: 1, seconds: 1, memoryMiB: 512 - ENROL_MEMORY_HEADROOM_BYTES / MiB, diskMiB: 10 }, 'a small one whole, less the headroom')
  t.same(enrolmentPlan({ cpu: 1, memoryBytes: 16 * MiB, diskBytes: 0 }, { seconds: 1 }), { workers: 1, seconds: 1, memoryMiB: 0, diskMiB: 0 }, 'under the headroom, or none: not measured')
  t.same(enrolmentPlan({ cpu: 1, memoryBytes: 2 ** 30, diskBytes: 2 ** 30 }, { seconds: 1, memoryCapBytes: 64 * MiB, diskCapBytes: 0 }), { workers: 1, seconds: 1, memoryMiB: 64, diskMiB: 0 }, 'the caps from config')
  t.notMatch(enrolmentScript({ workers: 1, seconds: 1, memoryMiB: 0, diskMiB: 0 }), /shm|state/, 'nothing asked: the cpu part only')
  t.match(enrolmentScript({ workers: 1, seconds: 1, memoryMiB: 8, diskMiB: 4 }), /fill \$f 8;[\s\S]*fill \$f 4;/)
})

t.test('workers follow the claim: whole cores, at least one, at most the cap', async (t) => {
  t.equal(enrolmentWorkers({ cpu: 0.5 }), 1)
  t.equal(enrolmentWorkers({ cpu: 3.9 }), 3)
  t.equal(enrolmentWorkers({ cpu: 1000 }), ENROL_MAX_WORKERS)
})

t.test('verdicts: cores that do not scale, and a claim that cannot be reserved, are inflated', async (t) => {
  const claimed = { cpu: 4, memoryBytes: 1 << 30 }
  t.equal(judgeEnrolment(claimed, { single: 100, total: 360, workers: 4, efficiency: 0.9 }, 1).verdict, 'passed')
  t.equal(judgeEnrolment(claimed, { single: 100, total: 120, workers: 4, efficiency: 0.3 }, 1).verdict, 'inflated')
  t.equal(judgeEnrolment({ cpu: 1, memoryBytes: 1 }, { single: 100, total: 40, workers: 1, efficiency: 0.4 }, 1).verdict, 'passed', 'one worker: nothing to scale, no verdict on noise')
  t.match(refusedClaim(claimed, 'InsufficientCapacityError: not enough cpu', 1), { verdict: 'inflated', measured: null, failed: ['reservation'] })
})

t.test('verdicts: a bounded write to memory or disk that does not complete is inflated, with what failed', async (t) => {
  const claimed = { cpu: 1, memoryBytes: 2 ** 30, diskBytes: 2 ** 31 }
  const cpu = { single: 100, total: 100, workers: 1, efficiency: 1 }
  const whole: EnrolmentStore = { mib: 256, written: 256, read: 256, intact: true, writeMiBps: 1000, readMiBps: 4000 }
  const ok = judgeEnrolment(claimed, { ...cpu, memory: whole, disk: { ...whole, mib: 64, written: 64, read: 64, direct: true } }, 1)
  t.equal(ok.verdict, 'passed')
  t.equal(ok.failed, undefined)
  t.match(ok.reason, /memory 256 MiB at 1000\/4000 MiB\/s; disk 64 MiB/, 'the figures are in the reason')
  for (const [memory, why] of [
    [{ ...whole, written: 96, read: 96 }, 'a write stopped short (ENOSPC in a container limited below the claim)'],
    [{ ...whole, read: 200 }, 'a short read-back'],
    [{ ...whole, intact: false }, 'content read back wrong'],
  ] as const) {
    const e = judgeEnrolment(claimed, { ...cpu, memory }, 1)
    t.same([e.verdict, e.failed], ['inflated', ['memory']], why)
    t.match(e.reason, /^memory: claims 1024 MiB/)
  }
  const held = judgeEnrolment(claimed, { ...cpu, memory: { ...whole, written: 64, read: 96, roomBytes: 96 * 2 ** 20, limitBytes: 128 * 2 ** 20 } }, 1)
  t.same([held.verdict, held.failed], ['inflated', ['memory']], 'a container held below the claim: its /dev/shm is small because its limit is')
  t.match(held.reason, /^memory: claims 1024 MiB; its container \(limit 128 MiB\) held 64\/256 MiB written/)
  const old = judgeEnrolment(claimed, { ...cpu, memory: { ...whole, written: 64, read: 64, roomBytes: 64 * 2 ** 20, limitBytes: 2 ** 30 } }, 1)
  t.same([old.verdict, old.failed], ['passed', undefined], 'Docker\'s 64 MiB /dev/shm under a limit that is the claim (a node without the sizing): memory not measured, not failed')
  t.match(old.reason, /memory not measured: a \/dev\/shm of 64 MiB for 256 MiB/)
  const noLimit = judgeEnrolment(claimed, { ...cpu, memory: { ...whole, written: 64, read: 64, roomBytes: 64 * 2 ** 20 } }, 1)
  t.equal(noLimit.verdict, 'passed', 'the same with no limit known')
  t.equal(judgeEnrolment(claimed, { ...cpu, memory: { ...whole, written: 200, read: 200, roomBytes: 2 ** 30, limitBytes: 2 ** 30 } }, 1).verdict, 'inflated', 'room enough and the limit the claim, and still short (the host has not got it): inflated')
  const disk = judgeEnrolment(claimed, { ...cpu, memory: whole, disk: { ...whole, mib: 64, written: 32, read: 32, direct: true } }, 1)
  t.same([disk.verdict, disk.failed], ['inflated', ['disk']], 'a disk that fills before the bounded file is written')
  t.match(disk.reason, /^disk: claims 2048 MiB; 32\/64 MiB written/)
  const all = judgeEnrolment({ ...claimed, cpu: 4 }, { single: 100, total: 100, workers: 4, efficiency: 0.25, memory: { ...whole, written: 0, read: 0, intact: false }, disk: { ...whole, read: 0 } }, 1)
  t.same(all.failed, ['cpu', 'memory', 'disk'], 'each thing that is not there is named')
  t.same(memoryKilled(claimed, 992, 'the run ended failed without an exit code (oom)', 1), {
    at: 1, claimed, measured: null, verdict: 'inflated', failed: ['memory'],
    reason: 'memory: claims 1024 MiB; its container was killed for memory writing 992 MiB (the run ended failed without an exit code (oom))',
  }, 'killed for memory while writing under its claim')
})

t.test('in the book: inflated is a strike, passed is not; the record keeps the enrolment', async (t) => {
  const book = new TrustBook({ policy: { ...defaultTrustPolicy }, judgeUptime: false })
  const claimed = { cpu: 4, memoryBytes: 1 << 30 }
  t.same(book.enrolled('did:key:zHonest', judgeEnrolment(claimed, { single: 100, total: 390, workers: 4, efficiency: 0.975 }, 10)), [])
  const honest = book.view('did:key:zHonest', 10)!
  t.equal(honest.strikes, 0)
  t.equal(honest.enrolment?.verdict, 'passed')
  t.same(book.enrolled('did:key:zLiar', refusedClaim(claimed, 'no', 10)), [], 'one strike: not quarantined yet (policy: 2)')
  const liar = book.view('did:key:zLiar', 10)!
  t.equal(liar.strikes, defaultTrustPolicy.strikeInvalid)
  t.equal(liar.history.at(-1)?.by, 'enrolment')
  const events = book.enrolled('did:key:zLiar', refusedClaim(claimed, 'again', 11))
  t.equal(events[0]?.kind, 'quarantined', 'a second inflated enrolment quarantines it')
})

t.test('an enrolment report is kept only when it is about this node, from a validator it trusts, and signed by it', async (t) => {
  const { NodeKey } = await import('../../identity/keys.ts')
  const { signEnrolmentReport, verifyEnrolmentReport } = await import('../enrolment-report.ts')
  const { InvalidTrustRecordError, TrustRecordSignatureError, UntrustedValidatorError } = await import('../errors.ts')
  const validator = NodeKey.generate()
  const attacker = NodeKey.generate()
  const self = NodeKey.generate().did
  const e = judgeEnrolment({ cpu: 2, memoryBytes: 2 ** 30 }, { single: 100, total: 190, workers: 2, efficiency: 0.95 }, 5)
  const trusts = (v: string) => v === validator.did
  const r = signEnrolmentReport(validator, self, e)
  t.same(verifyEnrolmentReport(r, self, trusts).enrolment.verdict, 'passed')
  t.throws(() => verifyEnrolmentReport(signEnrolmentReport(validator, NodeKey.generate().did, e), self, trusts), InvalidTrustRecordError, 'about another node')
  t.throws(() => verifyEnrolmentReport(signEnrolmentReport(attacker, self, e), self, trusts), UntrustedValidatorError, 'from a validator it does not trust')
  const forged = { body: { ...r.body, enrolment: { ...r.body.enrolment, verdict: 'inflated' } }, sig: r.sig }
  t.throws(() => verifyEnrolmentReport(forged, self, trusts), TrustRecordSignatureError, 'a verdict changed after signing')
  const impostor = { body: r.body, sig: signEnrolmentReport(attacker, self, e).sig }
  t.throws(() => verifyEnrolmentReport(impostor, self, trusts), TrustRecordSignatureError, 'signed by someone else in the validator\'s name')
  // memory and disk figures are signed with the rest; a report without them (from before they were measured) still verifies
  const store = { mib: 64, written: 64, read: 64, intact: true, writeMiBps: 900, readMiBps: 3000 }
  const full = judgeEnrolment({ cpu: 2, memoryBytes: 2 ** 30, diskBytes: 2 ** 30 }, { single: 100, total: 190, workers: 2, efficiency: 0.95, memory: store, disk: { ...store, direct: false } }, 6)
  t.same(verifyEnrolmentReport(signEnrolmentReport(validator, self, full), self, trusts).enrolment.measured?.disk, { ...store, direct: false }, 'memory and disk measures signed and kept')
  const old = signEnrolmentReport(validator, self, { at: 4, claimed: { cpu: 2, memoryBytes: 2 ** 30 }, measured: { single: 100, total: 190, workers: 2, efficiency: 0.95 }, verdict: 'passed', reason: 'old' })
  t.equal(verifyEnrolmentReport(old, self, trusts).enrolment.reason, 'old', 'a report of the old form still verifies')
  const m = full.measured!
  for (const bad of [null, {}, { body: { ...r.body, extra: 1 }, sig: r.sig }, { body: { ...r.body, enrolment: { ...r.body.enrolment, verdict: 'great' } }, sig: r.sig },
    { body: { ...r.body, enrolment: { ...full, measured: { ...m, memory: { ...store, written: -1 } } } }, sig: r.sig },
    { body: { ...r.body, enrolment: { ...full, measured: { ...m, disk: { ...store, extra: 1 } } } }, sig: r.sig },
    { body: { ...r.body, enrolment: { ...full, failed: ['luck'] } }, sig: r.sig },
    { body: { ...r.body, enrolment: { ...full, claimed: { ...full.claimed, diskBytes: 'lots' } } }, sig: r.sig }]) {
    t.throws(() => verifyEnrolmentReport(bad, self, trusts), InvalidTrustRecordError, `malformed: ${JSON.stringify(bad)?.slice(0, 60)}`)
  }
})
