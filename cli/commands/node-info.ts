// The owner's view of the appliance: `noir node info`, `noir node allocations`, `noir node logs ALLOC [-f]`.
// All go through the local daemon API (spec/appliance.md lists the routes; spec/cli.md the --json documents).
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'
import { ApiClient } from '../api-client.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'

interface Resources { cpu: number; memoryBytes: number; diskBytes: number; gpu: number }
interface NodeInfo {
  did: string
  hardware: {
    cpu: { model: string; cores: number; arch: string }
    memory: { totalBytes: number; availableBytes: number }
    disk: { path: string; totalBytes: number; freeBytes: number }
    gpus: Array<{ index: number; name: string; memoryBytes: number }>
    os: { platform: string; release: string }
  }
  share: Resources & { text: string }
  capacity: { used: Resources; free: Resources; ports: { range: [number, number]; used: number; free: number } }
  enrollment: { cpuSha256MBps: number; memoryCopyGBps: number; at: string }
  executors: Record<string, { ok: boolean; reason?: string }>
  heartbeat: { topic: string; intervalMs: number }
}
interface Allocation {
  id: string
  kind: string
  state: string
  spec: { limits: { cpu: number; memoryBytes: number }; network: 'none' | { ports: Array<{ containerPort: number; hostPort: number }> } }
  lastExit: { code: number | null; reason: string } | null
  reason: string | null
  restarts: number
  startedAt: number | null
  usage: { cpuNanos: number; memoryBytes: number } | null
}

const gib = (b: number): string => `${(b / 1024 ** 3).toFixed(2)} GiB`
const mib = (b: number): string => `${(b / 1024 ** 2).toFixed(1)} MiB`

function options(argv: string[], opts: ParseArgsOptionsConfig, positionals = false): { values: Record<string, unknown>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: opts, allowPositionals: positionals, strict: true })
    return { values: r.values as Record<string, unknown>, positionals: r.positionals }
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

export const nodeInfoCommand: Command = {
  path: ['node', 'info'],
  summary: "this machine, the owner's share, free capacity and executors",
  usage: `Usage: noir node info [--json]

Shows what the local daemon knows of this machine (CPU, memory, disk, GPUs, OS), the owner's share
(--share / config.json 'share'), what is used and free of it, the enrollment benchmark and which
executors can run here. --json prints the document of GET /v1/node/info (spec/cli.md).`,
  async run(ctx, argv) {
    options(argv, {})
    const info = await ApiClient.forHome(ctx.home).get<NodeInfo>('/v1/node/info')
    if (ctx.json) return void printJson(ctx, info)
    const h = info.hardware
    printLine(ctx, `node      ${info.did}`)
    printLine(ctx, `cpu       ${h.cpu.model} (${h.cpu.cores} cores, ${h.cpu.arch})`)
    printLine(ctx, `memory    ${gib(h.memory.totalBytes)} total, ${gib(h.memory.availableBytes)} available`)
    printLine(ctx, `disk      ${gib(h.disk.totalBytes)} total, ${gib(h.disk.freeBytes)} free (${h.disk.path})`)
    printLine(ctx, `gpus      ${h.gpus.length === 0 ? 'none' : h.gpus.map((g) => `${g.index}: ${g.name} ${gib(g.memoryBytes)}`).join('; ')}`)
    printLine(ctx, `os        ${h.os.platform} ${h.os.release}`)
    printLine(ctx, `share     ${info.share.text}`)
    const u = info.capacity.used
    const f = info.capacity.free
    printLine(ctx, `used      cpu=${u.cpu} memory=${gib(u.memoryBytes)} disk=${gib(u.diskBytes)} gpu=${u.gpu}`)
    printLine(ctx, `free      cpu=${f.cpu} memory=${gib(f.memoryBytes)} disk=${gib(f.diskBytes)} gpu=${f.gpu}`)
    printLine(ctx, `ports     ${info.capacity.ports.range.join('-')} (${info.capacity.ports.used} used)`)
    printLine(ctx, `benchmark sha256 ${info.enrollment.cpuSha256MBps} MB/s, memory copy ${info.enrollment.memoryCopyGBps} GB/s (${info.enrollment.at})`)
    for (const [k, a] of Object.entries(info.executors)) printLine(ctx, `executor  ${k.padEnd(8)} ${a.ok ? 'available' : `unavailable: ${a.reason ?? ''}`}`)
    printLine(ctx, `heartbeat ${info.heartbeat.topic} every ${info.heartbeat.intervalMs} ms`)
  },
}

export const nodeAllocationsCommand: Command = {
  path: ['node', 'allocations'],
  summary: 'the workloads this node runs, with their state and usage',
  usage: `Usage: noir node allocations [--json]

Lists this node's allocations: id, runtime kind, state (pending, starting, running, backoff, stopping,
stopped, exited, failed), limits, published ports, exit and usage. --json prints
GET /v1/allocations (spec/cli.md).`,
  async run(ctx, argv) {
    options(argv, {})
    const doc = await ApiClient.forHome(ctx.home).get<{ allocations: Allocation[] }>('/v1/allocations')
    if (ctx.json) return void printJson(ctx, doc)
    if (doc.allocations.length === 0) return void printLine(ctx, 'no allocations')
    printLine(ctx, `${'ID'.padEnd(24)} ${'KIND'.padEnd(7)} ${'STATE'.padEnd(9)} ${'CPU'.padEnd(5)} ${'MEMORY'.padEnd(10)} ${'USED'.padEnd(10)} DETAIL`)
    for (const a of doc.allocations) {
      const ports = a.spec.network === 'none' ? '' : a.spec.network.ports.map((p) => `127.0.0.1:${p.hostPort}->${p.containerPort}`).join(',')
      const exit = a.lastExit ? `exit ${a.lastExit.code ?? '-'} (${a.lastExit.reason})` : ''
      const detail = [ports, exit, a.reason ?? '', a.restarts > 0 ? `restarts ${a.restarts}` : ''].filter((s) => s.length > 0).join(' ')
      printLine(ctx, `${a.id.padEnd(24)} ${a.kind.padEnd(7)} ${a.state.padEnd(9)} ${String(a.spec.limits.cpu).padEnd(5)} ${mib(a.spec.limits.memoryBytes).padEnd(10)} ${(a.usage ? mib(a.usage.memoryBytes) : '-').padEnd(10)} ${detail}`)
    }
  },
}

export const nodeLogsCommand: Command = {
  path: ['node', 'logs'],
  summary: "an allocation's log lines (-f follows until it ends)",
  usage: `Usage: noir node logs ALLOC [-f|--follow] [--since ISO-TIME] [--json]

Prints the allocation's log lines with their timestamps. -f keeps following until the workload ends
(or Ctrl-C). --json prints one JSON document per line: { ts, stream, line } (spec/cli.md).`,
  async run(ctx, argv) {
    const { values, positionals } = options(argv, { follow: { type: 'boolean', short: 'f' }, since: { type: 'string' } }, true)
    if (positionals.length !== 1) throw new UsageError('noir node logs needs exactly one allocation id')
    const id = positionals[0]!
    const q = new URLSearchParams()
    if (values.follow) q.set('follow', '1')
    if (typeof values.since === 'string') {
      const ms = Date.parse(values.since)
      if (Number.isNaN(ms)) throw new UsageError('--since must be an ISO time, e.g. 2026-11-21T23:00:00Z')
      q.set('since', String(ms))
    }
    const api = ApiClient.forHome(ctx.home)
    for await (const l of api.stream<{ ts: number; stream: string; line: string }>(`/v1/allocations/${encodeURIComponent(id)}/logs?${q}`, { signal: ctx.signal })) {
      if (ctx.json) ctx.stdout.write(JSON.stringify(l) + '\n')
      else printLine(ctx, `${new Date(l.ts).toISOString()} ${l.stream.padEnd(6)} ${l.line}`)
    }
  },
}

export const nodeApplianceCommands: Command[] = [nodeInfoCommand, nodeAllocationsCommand, nodeLogsCommand]
