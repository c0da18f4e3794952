// `noir demo`: the whole product in one command, on embedded defaults. Starts a local mesh of three real
// node daemons (separate processes, temp homes, 127.0.0.1 only), deploys a two-replica protected service
// and a finite job (containers when Docker answers and has the image, WebAssembly otherwise), streams
// their logs, kills one node with SIGKILL, shows the service come back on another node with the time it
// took, then stops everything: no process, container or temp directory is left behind.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Docker from 'dockerode'
import { printLine, UsageError, type Command, type CommandContext } from '../command.ts'
import { LocalMesh, type LocalNode } from '../local-mesh.ts'
import { demoJobModule, demoServiceModule } from '../../appliance/executor/wasm/demo-modules.ts'
import { Catalog } from '../../appliance/catalog/catalog.ts'
import { eventCount, type DeploymentPhase, type DeploymentView } from '../../actors/deployment/model.ts'
import { deploymentWaitQuery } from '../../actors/orchestrator/deployment-wait.ts'
import { FOLLOW_WAIT_MS } from '../follow-deployment.ts'
import { printEvents } from './deploy.ts'
import { formatNlcText } from '../../ledger/units.ts'

export { removeNodeContainers } from '../local-mesh.ts'

/** µNLC the demo's consumer is funded with: 100 NLC. */
const DEMO_FUNDING = 100_000_000n
interface UsageDoc {
  totals: { records: number; claimed: string; accepted: string; disputed: number }
  records: Array<{ status: string; record: { body: { seq: number; contractId: string; provider: string; replicaMs: number; amount: string }; consumerSig?: string } }>
}
const nlc = async (api: LocalNode['api']): Promise<{ posted: string; held: string; available: string }> =>
  (await api.get<{ balances: { account: string; posted: string; held: string; available: string }[] }>('/v1/wallet')).balances.find((b) => b.account === 'self:NLC')!
/** µNLC as NLC with six decimals (display only: the amount stays an integer). */
const micro = (v: string): string => {
  const n = BigInt(v)
  return `${n / 1_000_000n}.${String(n % 1_000_000n).padStart(6, '0')}`
}

const IMAGE = 'noir/busybox:latest'

async function dockerReady(): Promise<boolean> {
  try {
    const docker = new Docker()
    await docker.ping()
    await docker.getImage(IMAGE).inspect()
    return true
  } catch {
    return false
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const tag = (did: string | null): string => (did ? did.slice(-6) : '------')

/**
 * Follows a deployment with the status long poll (spec/orchestration.md "Local API") until `done`: answered
 * on each new event (printed as it comes) or one of `phases`; an answer with nothing new is followed by a pause.
 */
async function until(ctx: CommandContext, api: LocalNode['api'], id: string, done: (v: DeploymentView) => boolean, phases: DeploymentPhase[], seen: { n: number }, timeoutMs: number): Promise<DeploymentView> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const asked = seen.n
    const waitMs = Math.max(0, Math.min(FOLLOW_WAIT_MS, end - Date.now()))
    const v = await api.get<DeploymentView>(`/v1/deployments/${id}?${deploymentWaitQuery({ until: phases, events: asked, waitMs })}`, { signal: ctx.signal })
    seen.n = printEvents(ctx, v, seen.n)
    if (done(v)) return v
    if (Date.now() > end || ctx.signal.aborted) throw new Error(`deployment ${id} did not get there in ${timeoutMs} ms (phase ${v.phase}${v.reason ? `: ${v.reason}` : ''})`)
    if (eventCount(v) <= asked) await sleep(100)
  }
}

/** Prints a replica's log lines for `ms`. */
async function streamLogs(ctx: CommandContext, api: LocalNode['api'], id: string, replica: number, ms: number, prefix: string): Promise<number> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), ms)
  const onAbort = (): void => ac.abort()
  ctx.signal.addEventListener('abort', onAbort)
  let n = 0
  try {
    for await (const d of api.stream<{ line?: string; node?: string; event?: string; to?: string }>(`/v1/deployments/${id}/logs?replica=${replica}&follow=1`, { signal: ac.signal })) {
      if (d.event === 'moved') printLine(ctx, `${prefix} --- moved to ${tag(d.to ?? null)}`)
      else {
        printLine(ctx, `${prefix} [${tag(d.node ?? null)}] ${d.line}`)
        n++
      }
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err
  } finally {
    clearTimeout(timer)
    ctx.signal.removeEventListener('abort', onAbort)
  }
  return n
}

export const demoCommand: Command = {
  path: ['demo'],
  summary: 'run the whole thing locally: three nodes, a service and a job, a node killed, the service moved',
  usage: `Usage: noir demo [--wasm]

Starts three node daemons on 127.0.0.1 (temp homes), deploys a two-replica protected service and a finite
job, streams their logs, kills one node (SIGKILL), shows the service running again on another node and how
long that took, then shuts everything down. Containers (noir/busybox) when Docker is there, WebAssembly
otherwise (--wasm forces it). Needs nothing beyond \`npm install\`.`,
  async run(ctx, argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { wasm: { type: 'boolean' } }, allowPositionals: true })
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`)
    const useDocker = !values.wasm && (await dockerReady())
    const work = mkdtempSync(join(tmpdir(), 'noir-demo-'))
    // Daemons with temp homes; their keys are encrypted with a passphrase made for this run only.
    const mesh = new LocalMesh({ homePrefix: 'noir-demo-node-' })
    const t0 = Date.now()
    const say = (s: string): void => printLine(ctx, s)
    try {
      say(`NoirLedger demo: three nodes on 127.0.0.1, workloads as ${useDocker ? `containers (${IMAGE})` : 'WebAssembly modules'}`)
      // usage records every second so that the money moves while the demo watches (the default is a minute)
      const config = { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 800 }, ledger: { usageIntervalMs: 1000 } }
      const nodes = await mesh.startMany(3, { config: config as never })
      const a = nodes[0]!
      for (const n of nodes) say(`  node ${tag(n.did)}  pid ${n.pid}  ${n.did}`)
      for (let i = 0; i < 100 && (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length < 2; i++) await sleep(100)
      await sleep(1000) // let the pubsub mesh form
      say(`mesh up in ${Date.now() - t0} ms; this CLI talks to node ${tag(a.did)}`)
      // every contract holds a prepaid window of NLC: the consumer is funded first (development top-up)
      await a.api.post('/v1/wallet/topup', { amount: String(DEMO_FUNDING), ref: 'demo-funding' })
      const before = await nlc(a.api)
      say(`node ${tag(a.did)}'s wallet: ${micro(before.available)} NLC available (development top-up)`)

      let serviceRuntime: Record<string, unknown>
      let jobRuntime: Record<string, unknown>
      if (useDocker) {
        serviceRuntime = { type: 'container', image: IMAGE, command: ['sh', '-c', 'i=0; while true; do echo "hello from $NOIR_SLOT tick $i"; i=$((i+1)); sleep 0.5; done'] }
        jobRuntime = { type: 'container', image: IMAGE, command: ['sh', '-c', 'for i in 1 2 3 4 5; do echo "job step $i of 5"; done; echo "job done"'] }
      } else {
        const svc = join(work, 'service.wasm')
        const job = join(work, 'job.wasm')
        writeFileSync(svc, demoServiceModule())
        writeFileSync(job, demoJobModule())
        // Workloads name modules, never paths: the demo owns all three nodes, so it installs the modules into
        // each node's catalog as their owner would (noir catalog add wasm NAME FILE).
        for (const n of nodes) {
          const catalog = new Catalog(n.home)
          catalog.add('wasm', 'demo-service', svc)
          catalog.add('wasm', 'demo-job', job)
        }
        serviceRuntime = { type: 'wasm', module: 'demo-service' }
        jobRuntime = { type: 'wasm', module: 'demo-job' }
      }
      const service = { apiVersion: 'noir/v1', kind: 'service', name: 'demo-service', lane: 'protected', runtime: serviceRuntime, resources: { cpu: 0.25, memory: '32Mi' }, service: { replicas: 2 } }
      const job = { apiVersion: 'noir/v1', kind: 'job', name: 'demo-job', runtime: jobRuntime, resources: { cpu: 0.25, memory: '16Mi' }, job: { retries: 1 } }

      say('\n== deploying a two-replica service (protected lane: distinct nodes, a standby, fast failure detection)')
      const sd = await a.api.post<DeploymentView>('/v1/deployments', { workload: service })
      const sSeen = { n: 0 }
      let sv = await until(ctx, a.api, sd.id, (v) => v.phase === 'running' || v.phase === 'failed', ['running', 'failed'], sSeen, 60_000)
      if (sv.phase === 'failed') throw new Error(`the service failed: ${sv.reason}`)

      say('\n== deploying a finite job')
      const jd = await a.api.post<DeploymentView>('/v1/deployments', { workload: job })
      const jSeen = { n: 0 }
      const jv = await until(ctx, a.api, jd.id, (v) => v.phase === 'completed' || v.phase === 'failed', ['completed', 'failed'], jSeen, 60_000)
      say(`job ${jv.phase}; its log, read over the mesh from node ${tag(jv.replicas[0]!.node)}:`)
      await streamLogs(ctx, a.api, jd.id, 0, 1500, '  job |')

      say('\n== service logs (replica 0), streamed over the mesh')
      await streamLogs(ctx, a.api, sd.id, 0, 2000, '  svc |')

      sv = await a.api.get<DeploymentView>(`/v1/deployments/${sd.id}`)
      const victimRep = sv.replicas.find((r) => r.node !== a.did) ?? sv.replicas[0]!
      const victim = nodes.find((n) => n.did === victimRep.node)!
      say(`\n== kill -9 node ${tag(victim.did)} (pid ${victim.pid}), which runs replica ${victimRep.index}`)
      const killedAt = Date.now()
      await victim.kill()
      // answered at once while it is still running (polled until the loss is seen), then on its events and the phase
      sv = await until(ctx, a.api, sd.id, (v) => v.phase === 'running' && v.failovers.some((f) => f.from === victim.did && f.runningAt !== null), ['running', 'failed'], sSeen, 60_000)
      const f = sv.failovers.find((x) => x.from === victim.did)!
      say(`replica ${victimRep.index} is running again on node ${tag(f.to)}: ${f.runningAt! - killedAt} ms after the kill (failure detected after ${f.lostAt - killedAt} ms)`)
      await streamLogs(ctx, a.api, sd.id, victimRep.index, 1500, '  svc |')

      say('\n== contracts on node ' + tag(a.did) + ' (each signed by both sides)')
      const cs = await a.api.get<{ contracts: { id: string; side: string; status: string; slot: string; epoch: number; provider: string; pricePerHour: string; signedByConsumer: boolean; signedByProvider: boolean }[] }>('/v1/contracts')
      for (const x of cs.contracts) say(`  ${x.id.slice(0, 8)} ${x.side.padEnd(8)} ${x.status.padEnd(9)} ${x.slot} epoch ${x.epoch} on ${tag(x.provider)} ${formatNlcText(x.pricePerHour)}/h ${x.signedByConsumer && x.signedByProvider ? 'signed by both' : ''}`)

      say('\n== stopping')
      const stopped = await a.api.post<DeploymentView>(`/v1/deployments/${sd.id}/stop`)
      for (const f of stopped.stopFailures) say(`  ${f.slot} on node ${tag(f.node)} did not confirm its stop: ${f.error}`)
      say(stopped.stopFailures.length === 0 ? `service ${stopped.phase}: every replica confirmed by its node` : `service ${stopped.phase}, ${stopped.stopFailures.length} replica(s) unconfirmed`)

      say('\n== the money (µNLC; 1 NLC = 1,000,000 µNLC)')
      await sleep(2000) // the final usage records of the stopped replicas are on their way
      for (const d of [jd.id, sd.id]) {
        const u = await a.api.get<UsageDoc>(`/v1/deployments/${d}/usage`)
        say(`  ${d}: ${u.totals.records} usage record(s) signed by the worker, ${u.totals.accepted} of ${u.totals.claimed} µNLC accepted, ${u.totals.disputed} disputed`)
        for (const r of u.records.slice(0, 3)) {
          const b = r.record.body
          say(`    receipt #${b.seq} of ${b.contractId.slice(0, 8)} on ${tag(b.provider)}: ${b.replicaMs} ms, ${b.amount} µNLC, ${r.status}${r.record.consumerSig ? ', signed by both' : ''}`)
        }
        if (u.records.length > 3) say(`    ... ${u.records.length - 3} more (noir usage ${d})`)
      }
      const after = await nlc(a.api)
      say(`  consumer ${tag(a.did)}: ${micro(before.posted)} NLC before, ${micro(after.posted)} NLC after (paid ${BigInt(before.posted) - BigInt(after.posted)} µNLC), ${after.held} µNLC still held`)
      for (const n of nodes.filter((x) => x.running)) {
        const w = await n.api.get<{ balances: { account: string; posted: string }[] }>('/v1/wallet')
        say(`  node ${tag(n.did)} earned ${w.balances.find((x) => x.account === 'self:NLR')?.posted ?? '0'} NLR units (converted through the treasury, less the network fee)`)
      }
      return stopped.stopFailures.length === 0 ? 0 : 1
    } finally {
      const { containersRemoved } = await mesh.shutdown()
      rmSync(work, { recursive: true, force: true })
      say(`all nodes stopped${containersRemoved > 0 ? `, ${containersRemoved} container(s) they left removed` : ''}, temp homes removed (${Date.now() - t0} ms in all)`)
    }
  },
}
