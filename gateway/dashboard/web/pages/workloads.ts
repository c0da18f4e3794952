// Workloads: the list and the deploy forms (YAML text, or a small form for one container), and one
// deployment's page: its status and event timeline (refreshed every 2 s), its live logs (Server-Sent Events
// with follow, the session cookie carrying the auth), its usage, and stop.
import { call, optional } from '../../../../appliance/web/kit/api.ts'
import type { Reservation } from './capacity.ts'
import { announce, field, form, h, input, table, when } from '../../../../appliance/web/kit/dom.ts'
import { go, onLeave } from '../nav.ts'

interface Replica { index: number; state: string; node: string | null; runningSince: number | null; lastExitCode: number | null }
interface Deployment { id: string; name: string; kind: string; phase: string; reason: string | null; createdAt: number; desired: number; replicas: Replica[]; events?: Array<{ at: number; msg: string }>; history?: Array<{ phase: string; at: number; reason?: string }> }
interface UsageView { totals?: { records: number; claimed: string; accepted: string; disputed: number; unanswered: number } }

const EXAMPLE = 'apiVersion: noir/v1\nkind: job\nname: hello\nruntime: {type: container, image: noir/busybox:latest, command: [sh, -c, "echo hello"]}\nresources: {cpu: 0.2, memory: 32Mi}\n'

export async function workloadsPage(main: HTMLElement): Promise<void> {
  const list = h('div', { class: 'scroll' })
  const draw = async () => {
    const { workloads } = await call<{ workloads: Deployment[] }>('GET', '/v1/workloads')
    list.replaceChildren(workloads.length === 0
      ? h('p', { class: 'muted' }, 'No workloads yet: deploy one below.')
      : table(['Name', 'Kind', 'Phase', 'Replicas', 'Created'], workloads.map((d) => [h('a', { href: `/app/workloads/${encodeURIComponent(d.id)}` }, d.name), d.kind, d.phase, `${d.replicas.filter((r) => r.state === 'running').length}/${d.desired}`, when(d.createdAt)]), 'Your deployments'))
  }
  const deployed = async (d: { id: string }) => {
    announce('Deployed')
    go(`/app/workloads/${encodeURIComponent(d.id)}`)
  }
  const yaml = h('textarea', { name: 'yaml', spellcheck: 'false', required: true })
  yaml.value = EXAMPLE
  // deploys may run inside one of the account's active capacity reservations (none when the gateway keeps no books)
  const active = ((await optional<{ reservations: Reservation[] }>('GET', '/v1/capacity'))?.reservations ?? []).filter((r) => r.state === 'active')
  const reservation = h('select', { name: 'reservation' }, h('option', { value: '' }, 'none (placed on its own)'), ...active.map((r) => h('option', { value: r.id }, `${r.id} (${r.slots - r.slotsUsed} of ${r.slots} slots free)`)))
  const inside = (v: Record<string, string>) => (v.reservation ? { reservation: v.reservation } : {})
  const kind = h('select', { name: 'kind' }, h('option', { value: 'job' }, 'job (runs once)'), h('option', { value: 'service' }, 'service (kept running)'))
  main.append(
    h('h1', {}, 'Workloads'),
    list,
    h('h2', {}, 'Deploy from YAML'),
    form('Deploy from YAML', [
      field('Workload (YAML)', yaml, 'The workload format of spec/workload.schema.json.'),
      ...(active.length > 0 ? [field('Run inside reservation', reservation, 'Its lane, runtime and per-slot resources; its price; nothing held of its own.')] : []),
    ], 'Deploy', async (v) => deployed(await call('POST', '/v1/workloads', { workload: v.yaml, ...inside(v) }))),
    h('h2', {}, 'Deploy a container'),
    form('Deploy a container', [
      field('Name', input('name', 'text', { required: true, pattern: '[a-z0-9][a-z0-9\\-]{0,62}' }), 'Lower-case letters, digits and dashes.'),
      field('Kind', kind),
      field('Image', input('image', 'text', { required: true, value: 'noir/busybox:latest' })),
      field('Command', input('command', 'text', { required: true }), 'Run with sh -c.'),
      field('CPU (cores)', input('cpu', 'number', { required: true, value: '0.2', step: '0.1', min: '0.1' })),
      field('Memory', input('memory', 'text', { required: true, value: '32Mi' })),
    ], 'Deploy', async (v) => deployed(await call('POST', '/v1/workloads', {
      workload: { apiVersion: 'noir/v1', kind: v.kind, name: v.name, runtime: { type: 'container', image: v.image, command: ['sh', '-c', v.command ?? ''] }, resources: { cpu: Number(v.cpu), memory: v.memory } },
    }))),
  )
  await draw()
}

const SETTLED = new Set(['running', 'completed', 'failed', 'stopped'])

export async function workloadPage(main: HTMLElement, params: Record<string, string>): Promise<void> {
  const id = params.id!
  const path = `/v1/workloads/${encodeURIComponent(id)}`
  const title = h('h1', {}, 'Workload')
  const facts = h('dl', { class: 'facts' })
  const replicas = h('div', { class: 'scroll' })
  const timeline = h('ol', { class: 'timeline', 'aria-label': 'Events' })
  const logs = h('pre', { class: 'logs', tabindex: '0', 'aria-label': 'Log lines', 'aria-live': 'off' })
  const logState = h('p', { class: 'muted', id: 'log-state' }, 'Logs start when a replica runs.')
  const usage = h('div', {})
  const stop = h('button', { type: 'button', class: 'danger' }, 'Stop')
  main.append(title, facts, h('div', { class: 'row' }, stop), h('h2', {}, 'Replicas'), replicas, h('h2', {}, 'Events'), timeline, h('h2', {}, 'Logs'), logState, logs, h('h2', {}, 'Usage'), usage)

  let source: EventSource | undefined
  const follow = () => {
    if (source) return
    source = new EventSource(`${path}/logs?follow=1`)
    logState.textContent = 'Following the logs…'
    source.addEventListener('log', (ev) => {
      const l = JSON.parse((ev as MessageEvent<string>).data) as { ts: number; stream: string; line: string }
      logs.append(h('span', { class: l.stream === 'stderr' ? 'stderr' : 'stdout' }, `${l.line}\n`))
      logs.scrollTop = logs.scrollHeight
    })
    source.addEventListener('end', () => {
      source?.close()
      logState.textContent = 'The log has ended.'
    })
    source.addEventListener('error', (ev) => {
      const data = (ev as MessageEvent<string>).data
      if (typeof data === 'string' && data.length > 0) logState.textContent = `The log stream failed: ${(JSON.parse(data) as { detail: string }).detail}`
      if (source?.readyState === EventSource.CLOSED || data) {
        source?.close()
        if (!data) logState.textContent = 'The log stream closed.'
      }
    })
  }

  const draw = async () => {
    const d = await call<Deployment>('GET', path)
    title.textContent = `Workload ${d.name}`
    facts.replaceChildren(
      h('dt', {}, 'Id'), h('dd', {}, d.id),
      h('dt', {}, 'Kind'), h('dd', {}, d.kind),
      h('dt', {}, 'Phase'), h('dd', { id: 'phase' }, d.phase),
      ...(d.reason ? [h('dt', {}, 'Reason'), h('dd', {}, d.reason)] : []),
      h('dt', {}, 'Created'), h('dd', {}, when(d.createdAt)),
    )
    replicas.replaceChildren(table(['#', 'State', 'Node', 'Running since', 'Exit'], d.replicas.map((r) => [r.index, r.state, r.node ? `${r.node.slice(0, 24)}…` : '—', when(r.runningSince), r.lastExitCode ?? '—']), 'Replicas'))
    const events = (d.events ?? []).length > 0 ? d.events! : (d.history ?? []).map((x) => ({ at: x.at, msg: `${x.phase}${x.reason ? `: ${x.reason}` : ''}` }))
    timeline.replaceChildren(...events.map((e) => h('li', {}, h('time', { datetime: new Date(e.at).toISOString() }, when(e.at)), ' ', e.msg)))
    stop.disabled = d.phase === 'stopped' || d.phase === 'completed' || d.phase === 'failed'
    if (SETTLED.has(d.phase) && d.phase !== 'stopped') follow()
    const u = await call<UsageView>('GET', `${path}/usage`)
    usage.replaceChildren(u.totals
      ? h('dl', { class: 'facts' }, h('dt', {}, 'Records'), h('dd', {}, u.totals.records), h('dt', {}, 'Claimed (µNLC)'), h('dd', {}, u.totals.claimed), h('dt', {}, 'Accepted (µNLC)'), h('dd', {}, u.totals.accepted))
      : h('p', { class: 'muted' }, 'No usage yet.'))
    return d
  }
  stop.addEventListener('click', () => {
    stop.disabled = true
    call('POST', `${path}/stop`).then(() => {
      announce('Stopped')
      return draw()
    }).catch((err: unknown) => announce(String(err)))
  })
  const timer = setInterval(() => void draw().catch(() => undefined), 2000)
  onLeave(() => {
    clearInterval(timer)
    source?.close()
  })
  await draw()
}
