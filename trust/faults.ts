// Fault injection for tests (spec/trust.md "Fault injection"): a daemon can be made to cheat, so tests run
// real daemons that lie. Configured in config.json `trust.testFaults`; refused (FaultInjectionRefusedError,
// the daemon does not start) unless the environment has NOIR_TEST_FAULTS=1, so no production config can
// turn it on by mistake.
import { FaultInjectionRefusedError } from './errors.ts'

export interface TestFaults {
  /** Share of job runs whose stdout is served altered (a wrong result). */
  wrongResults: number
  /** Share of job runs accepted and never run (dropped work: started, then nothing). */
  dropWork: number
  /** Claims this many times its free capacity in bids (its reservations still fail). 1: honest. */
  inflateCapacity: number
  /**
   * Claims and reserves this many times its memory (its allocator believes the claim), while its containers
   * get only their share of the memory it has: each one's memory limit is what was reserved divided by this. 1: honest.
   */
  shortMemory: number
}

export const TEST_FAULTS_ENV = 'NOIR_TEST_FAULTS'

/** The faults of config `trust.testFaults`, or undefined when there are none. */
export function testFaultsFrom(raw: unknown, env: NodeJS.ProcessEnv): TestFaults | undefined {
  if (raw === undefined || raw === null) return undefined
  if (env[TEST_FAULTS_ENV] !== '1') {
    throw new FaultInjectionRefusedError(`trust.testFaults makes this node cheat and is for tests only: refused unless ${TEST_FAULTS_ENV}=1 is set`)
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new FaultInjectionRefusedError('trust.testFaults must be an object')
  const r = raw as Record<string, unknown>
  const problems: string[] = []
  for (const k of Object.keys(r)) if (!['wrongResults', 'dropWork', 'inflateCapacity', 'shortMemory'].includes(k)) problems.push(`${k}: unknown fault`)
  const share = (k: string): number => {
    const v = r[k] ?? 0
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) problems.push(`${k}: a share from 0 to 1`)
    return typeof v === 'number' ? v : 0
  }
  const factor = (k: 'inflateCapacity' | 'shortMemory'): number => {
    const v = r[k] ?? 1
    if (typeof v !== 'number' || !(v >= 1 && v <= 1000)) problems.push(`${k}: a factor from 1 to 1000`)
    return typeof v === 'number' && v >= 1 && v <= 1000 ? v : 1
  }
  const f: TestFaults = { wrongResults: share('wrongResults'), dropWork: share('dropWork'), inflateCapacity: factor('inflateCapacity'), shortMemory: factor('shortMemory') }
  if (problems.length > 0) throw new FaultInjectionRefusedError(`trust.testFaults: ${problems.join('; ')}`, { problems })
  return f
}

/** A stable draw in [0, 1) for one run (so a run lies the same way every time it is asked). */
export function faultDraw(id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return (h >>> 0) / 4294967296
}
