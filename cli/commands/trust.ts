// `noir trust [--json]` and `noir trust show DID [--json]`: what this node's trust book says of every node it
// knows (score, verified history, strikes, quarantine), and of one node in full (spec/trust.md, spec/cli.md).
import { ApiClient } from '../api-client.ts'
import { parseCommandArgs, printJson, printLine, type Command } from '../command.ts'

interface NodeTrust {
  node: string
  owner: string | null
  trust: number
  uptime: number
  valid: number
  invalid: number
  missed: number
  streak: number
  strikes: number
  judged: number
  replicationProbability: number
  validationTasks: { sent: number; passed: number; failed: number }
  quarantine: { since: number; reason: string; by: string } | null
  history: { at: number; event: string; by?: string; detail?: string }[]
  enrolment: {
    at: number; verdict: string; reason: string; failed?: string[]; claimed: { cpu: number; memoryBytes: number; diskBytes?: number }
    measured: { workers: number; efficiency: number; single: number; memory?: StoreMeasure; disk?: StoreMeasure } | null
  } | null
}

/** A bounded write and read-back of an enrolment (trust/enrolment.ts EnrolmentStore). */
interface StoreMeasure { mib: number; written: number; read: number; intact: boolean; writeMiBps: number; readMiBps: number; direct?: boolean }

interface TrustDoc {
  self: string
  validators: string[]
  thisNode: { quarantined: boolean; by?: string; reason?: string; since?: number }
  nodes: NodeTrust[]
}

const short = (did: string): string => (did.length > 24 ? `${did.slice(0, 12)}…${did.slice(-8)}` : did)
const when = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').slice(0, 19)

export const trustCommand: Command = {
  path: ['trust'],
  summary: 'list every node this node knows with its trust, verified history, strikes and quarantine',
  usage: `Usage: noir trust [--json]

Trust is 0..1, computed from verified results only (spec/trust.md): a node never judged has 0.
--json prints { self, validators, policy, thisNode: { quarantined, by?, reason?, since? }, nodes: [{ node, owner,
trust, uptime, valid, invalid, missed, streak, strikes, judged, replicationProbability, validationTasks: { sent,
passed, failed }, quarantine: { since, reason, by } | null, history: [{ at, event, by?, detail? }], enrolment:
{ at, claimed: { cpu, memoryBytes, diskBytes? }, measured: { single, total, workers, efficiency, memory?, disk? }
| null, verdict: passed | inflated, reason, failed?: [reservation | cpu | memory | disk] } | null (null: not
measured by this node yet), ... }] }; memory and disk (absent: not measured) are { mib, written, read, intact,
writeMiBps, readMiBps, direct? (disk: read back from the disk, not the page cache) }.`,
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir trust [--json]' })
    const r = await ApiClient.forHome(ctx.home).get<TrustDoc>('/v1/trust')
    if (ctx.json) return printJson(ctx, r)
    if (r.thisNode.quarantined) printLine(ctx, `THIS NODE IS QUARANTINED by ${r.thisNode.by}: ${r.thisNode.reason}`)
    if (r.nodes.length === 0) return printLine(ctx, 'no node known yet')
    printLine(ctx, `${'NODE'.padEnd(22)} ${'TRUST'.padStart(6)} ${'UPTIME'.padStart(6)} ${'VALID'.padStart(5)} ${'WRONG'.padStart(5)} ${'DROP'.padStart(4)} ${'STRIKES'.padStart(7)}  STATE`)
    for (const n of r.nodes) {
      const state = n.quarantine ? `quarantined since ${when(n.quarantine.since)}: ${n.quarantine.reason}` : n.judged === 0 ? 'unverified' : 'ok'
      printLine(ctx, `${short(n.node).padEnd(22)} ${n.trust.toFixed(3).padStart(6)} ${n.uptime.toFixed(2).padStart(6)} ${String(n.valid).padStart(5)} ${String(n.invalid).padStart(5)} ${String(n.missed).padStart(4)} ${String(n.strikes).padStart(7)}  ${state}`)
    }
  },
}

export const trustShowCommand: Command = {
  path: ['trust', 'show'],
  summary: 'show one node\'s trust record in full',
  usage: `Usage: noir trust show DID [--json]

--json prints the node's record as in \`noir trust --json\`; a node this node knows nothing of is UnknownNodeError (exit 1).`,
  async run(ctx, argv) {
    const { positionals } = parseCommandArgs(argv, {}, { min: 1, max: 1, usage: 'usage: noir trust show DID [--json]' })
    const n = await ApiClient.forHome(ctx.home).get<NodeTrust>(`/v1/trust/nodes/${encodeURIComponent(positionals[0]!)}`)
    if (ctx.json) return printJson(ctx, n)
    printLine(ctx, `node      ${n.node}`)
    printLine(ctx, `owner     ${n.owner ?? '(not known)'}`)
    printLine(ctx, `trust     ${n.trust}  (uptime ${n.uptime}, streak ${n.streak}, strikes ${n.strikes}; runs replicated with probability ${n.replicationProbability})`)
    printLine(ctx, `results   ${n.valid} valid, ${n.invalid} wrong, ${n.missed} dropped, ${n.judged} judged`)
    printLine(ctx, `tasks     ${n.validationTasks.sent} validation tasks sent, ${n.validationTasks.passed} passed, ${n.validationTasks.failed} failed`)
    const e = n.enrolment
    const disk = e?.claimed.diskBytes !== undefined ? `, ${Math.round(e.claimed.diskBytes / 1048576)} MiB disk` : ''
    printLine(ctx, `enrolment ${e ? `${e.verdict}${e.failed ? ` (${e.failed.join(', ')})` : ''} ${when(e.at)}: claimed ${e.claimed.cpu} cpu, ${Math.round(e.claimed.memoryBytes / 1048576)} MiB${disk}; ${e.reason}` : 'not measured by this node (unverified)'}`)
    if (e?.measured) {
      const m = e.measured
      const store = (s: StoreMeasure | undefined): string => (s ? `${s.written}/${s.mib} MiB written at ${s.writeMiBps} MiB/s, ${s.read} read back at ${s.readMiBps} MiB/s${s.intact ? '' : ' (content wrong)'}${s.direct === false ? ' (from cache)' : ''}` : 'not measured')
      printLine(ctx, `measured  cpu ${m.workers} worker(s) at ${m.efficiency} of linear; memory ${store(m.memory)}; disk ${store(m.disk)}`)
    }
    printLine(ctx, `state     ${n.quarantine ? `QUARANTINED since ${when(n.quarantine.since)} by ${n.quarantine.by}: ${n.quarantine.reason}` : 'not quarantined'}`)
    for (const h of n.history) printLine(ctx, `  ${when(h.at)}  ${h.event.padEnd(11)} ${h.by ?? ''}${h.detail ? `  ${h.detail}` : ''}`)
  },
}
