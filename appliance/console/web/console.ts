// The worker console (spec/dashboard.md): what a device owner looks at on their node's loopback API, with the
// console session cookie `noir console` set up: the node, its share (change it), allocations running, NLR
// earned over time, trust and reputation, heartbeats, hardware and its enrolment benchmark. Refreshed every 5 s.
import { call, units } from '../../web/kit/api.ts'
import { announce, field, form, h, input, table, when } from '../../web/kit/dom.ts'
import { stepLine } from '../../web/kit/plot.ts'

interface Balance { account: string; currency: string; posted: string; held: string; incoming: string; available: string }
interface Entry { kind: string; id: string; amount?: string; credit?: string; debit?: string; flags?: string[]; ts: number }
interface Info {
  did: string
  hardware: { cpu: { cores: number; model?: string }; memory: { totalBytes: number }; disk: { totalBytes: number }; gpus: unknown[] }
  share: { text: string }
  capacity: { free: { cpu: number; memoryBytes: number; diskBytes: number; gpu: number } }
  enrollment: Record<string, unknown>
  executors: Record<string, { ok: boolean; reason?: string }>
}
interface Status { did: string; peerId: string; version: string; uptimeMs: number; peers: number; multiaddrs: string[] }
interface Allocation { id: string; kind: string; state: string; startedAt: number | null; restarts: number; lastExit: { code: number | null; reason: string } | null }
interface NodeTrust { node: string; trust: number; uptime: number; valid: number; invalid: number; missed: number; quarantine: unknown }
interface StoreMeasure { mib: number; written: number; writeMiBps: number; readMiBps: number }
interface OwnEnrolment { validator: string; at: number; verdict: string; reason: string; claimed: { cpu: number; memoryBytes: number }; measured: { workers: number; efficiency: number; memory?: StoreMeasure; disk?: StoreMeasure } | null }
const storeText = (what: string, s: StoreMeasure | undefined): string => (s ? `; ${what} ${s.written}/${s.mib} MiB at ${s.writeMiBps}/${s.readMiBps} MiB/s` : '')
interface Trust { thisNode: { quarantined: boolean; reason?: string; enrolments?: OwnEnrolment[] }; nodes: NodeTrust[] }
interface Beats { topic: string; intervalMs: number; recent: Array<{ seq: number; at: number; published: boolean; error?: string }> }

const GiB = 1024 ** 3
const gib = (b: number) => `${(b / GiB).toFixed(1)} GiB`

function section(id: string, title: string, ...children: Array<Node | string>): HTMLElement {
  return h('section', { id, 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h` }, title), ...children)
}

async function draw(main: HTMLElement, shareForm: HTMLFormElement): Promise<void> {
  const [status, info, allocs, wallet, history, trust, beats] = await Promise.all([
    call<Status>('GET', '/v1/status'),
    call<Info>('GET', '/v1/node/info'),
    call<{ allocations: Allocation[] }>('GET', '/v1/allocations'),
    call<{ balances: Balance[] }>('GET', '/v1/wallet'),
    call<{ entries: Entry[] }>('GET', '/v1/wallet/history?account=self:NLR&limit=1000'),
    call<Trust>('GET', '/v1/trust'),
    call<Beats>('GET', '/v1/node/heartbeats'),
  ])
  const nlr = wallet.balances.find((b) => b.account === 'self:NLR')
  // earned: NLR credited to this node (posted or posting a hold), oldest first, as a running total
  let sum = 0n
  const earned = history.entries.filter((e) => e.kind === 'transfer' && e.credit === 'self:NLR' && !(e.flags ?? []).includes('pending')).sort((a, b) => a.ts - b.ts)
    .map((e) => ({ t: e.ts, y: Number((sum += BigInt(e.amount ?? '0'))) }))
  const mine = trust.nodes.find((n) => n.node === status.did)
  const running = allocs.allocations.filter((a) => a.state === 'running')
  const focused = document.activeElement
  const keep = shareForm.isConnected ? shareForm : undefined
  main.replaceChildren(
    h('h1', {}, 'Your node'),
    section('node', 'Node', h('dl', { class: 'facts' },
      h('dt', {}, 'DID'), h('dd', { id: 'node-did' }, status.did),
      h('dt', {}, 'Version'), h('dd', {}, status.version),
      h('dt', {}, 'Up for'), h('dd', {}, `${Math.round(status.uptimeMs / 1000)} s`),
      h('dt', {}, 'Peers'), h('dd', {}, String(status.peers)),
      h('dt', {}, 'Runtimes'), h('dd', {}, Object.entries(info.executors).map(([k, v]) => `${k}: ${v.ok ? 'yes' : `no (${v.reason ?? ''})`}`).join('; ')))),
    section('share', 'Share', h('p', {}, 'Shared now: ', h('strong', { id: 'share-now' }, info.share.text), '. Free for new work: ',
      `${info.capacity.free.cpu} CPU, ${gib(info.capacity.free.memoryBytes)} memory, ${gib(info.capacity.free.diskBytes)} disk, ${info.capacity.free.gpu} GPU.`), keep ?? shareForm),
    section('allocations', 'Allocations', h('p', {}, `${running.length} running of ${allocs.allocations.length}.`), h('div', { class: 'scroll' },
      table(['Id', 'Kind', 'State', 'Started', 'Restarts', 'Last exit'], allocs.allocations.map((a) => [a.id, a.kind, a.state, when(a.startedAt), a.restarts, a.lastExit ? `${a.lastExit.code ?? '—'} (${a.lastExit.reason})` : '—']), 'Allocations on this node'))),
    section('earnings', 'Earnings', h('div', { class: 'cards' },
      h('div', { class: 'card' }, h('div', {}, 'NLR earned (posted)'), h('div', { class: 'big', id: 'nlr-posted' }, `${units(nlr?.posted ?? '0', 6)} NLR`)),
      h('div', { class: 'card' }, h('div', {}, 'Available'), h('div', { class: 'big' }, `${units(nlr?.available ?? '0', 6)} NLR`))),
    earned.length > 0 ? h('figure', {}, stepLine(earned, 'NLR earned over time', 'µNLR'), h('figcaption', { class: 'muted' }, `${earned.length} credit(s).`)) : h('p', { class: 'muted', id: 'no-earnings' }, 'Nothing earned yet: credits appear as the workloads you run are paid.')),
    section('trust', 'Trust and reputation', h('p', {}, trust.thisNode.quarantined ? `This node is quarantined: ${trust.thisNode.reason ?? ''}` : 'This node is not quarantined.'),
      mine ? h('p', {}, `Its trust here: ${mine.trust.toFixed(3)}, uptime ${(mine.uptime * 100).toFixed(1)} %.`) : '',
      h('div', { class: 'scroll' }, table(['Node', 'Trust', 'Uptime', 'Valid', 'Invalid', 'Missed'], trust.nodes.map((n) => [`${n.node.slice(0, 20)}…`, n.trust.toFixed(3), `${(n.uptime * 100).toFixed(1)} %`, n.valid, n.invalid, n.missed]), 'Nodes this node judges'))),
    section('heartbeats', 'Heartbeats', h('p', {}, `Every ${beats.intervalMs} ms on ${beats.topic}.`), h('div', { class: 'scroll' },
      table(['Seq', 'At', 'Published'], beats.recent.slice(-10).reverse().map((b) => [b.seq, when(b.at), b.published ? 'yes' : `no (${b.error ?? ''})`]), 'The last heartbeats'))),
    section('hardware', 'Hardware and enrolment benchmark', h('dl', { class: 'facts' },
      h('dt', {}, 'CPU'), h('dd', {}, `${info.hardware.cpu.cores} cores${info.hardware.cpu.model ? ` (${info.hardware.cpu.model})` : ''}`),
      h('dt', {}, 'Memory'), h('dd', {}, gib(info.hardware.memory.totalBytes)),
      h('dt', {}, 'Disk'), h('dd', {}, gib(info.hardware.disk.totalBytes)),
      h('dt', {}, 'GPUs'), h('dd', {}, String(info.hardware.gpus.length)),
      ...Object.entries(info.enrollment).flatMap(([k, v]) => [h('dt', {}, `Benchmark ${k}`), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))])),
    (trust.thisNode.enrolments ?? []).length === 0
      ? h('p', { class: 'muted', id: 'no-enrolment' }, 'No validator has told this node of an enrolment yet.')
      : h('div', { class: 'scroll' }, table(['Validator', 'When', 'Verdict', 'Claimed', 'Measured', 'Why'], (trust.thisNode.enrolments ?? []).map((e) => [
        `${e.validator.slice(0, 20)}…`, when(e.at), e.verdict, `${e.claimed.cpu} CPU, ${gib(e.claimed.memoryBytes)}`,
        e.measured ? `${e.measured.workers} worker(s), ${(e.measured.efficiency * 100).toFixed(0)} % of linear${storeText('memory', e.measured.memory)}${storeText('disk', e.measured.disk)}` : '—', e.reason,
      ]), 'Enrolment by validators'))),
  )
  if (focused instanceof HTMLElement && focused.isConnected) focused.focus()
}

const main = document.getElementById('main')!
const shareForm = form('Change the share', [
  field('New share', input('share', 'text', { required: true, placeholder: 'cpu=2,memory=4GiB,disk=20GiB,gpu=0' }), 'cpu=N,memory=SIZE,disk=SIZE,gpu=N; new work is measured against it, running work is kept.'),
], 'Change the share', async (v, f) => {
  const r = await call<{ share: { text: string } }>('PUT', '/v1/node/share', { share: v.share })
  f.reset()
  announce(`Share changed to ${r.share.text}`)
  await draw(main, shareForm)
})
const refresh = () => draw(main, shareForm).catch((err: unknown) => announce(String(err)))
void refresh()
const timer = setInterval(() => void refresh(), 5000)
const end = h('button', { type: 'button', class: 'secondary' }, 'End this console session')
end.addEventListener('click', () => void fetch('/console/logout', { method: 'POST', credentials: 'same-origin' }).then(() => {
  clearInterval(timer)
  main.replaceChildren(h('h1', {}, 'Console session ended'), h('p', {}, 'Run noir console again to open it.'))
  announce('Console session ended')
}))
document.querySelector('header.top')?.append(end)
