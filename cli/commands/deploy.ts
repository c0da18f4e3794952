// `noir deploy FILE [--wait] [--json]`: validates the workload here (errors name the JSON path), hands it to
// this node's orchestrator, and shows the deployment's progress (bidding, contracts, starting).
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { deploymentsTarget, type DeploymentsTarget } from '../gateway-login.ts'
import { parseArgs } from 'node:util'
import { ApiClient } from '../api-client.ts'
import { printJson, printLine, UsageError, type Command, type CommandContext } from '../command.ts'
import { dirname } from 'node:path'
import { parseWorkload, parseWorkloadText, validateWorkload, workloadSpec, type Workload } from '../../actors/workload/workload.ts'
import { shipLocalArtifacts, type ShippedArtifact } from './deploy-artifacts.ts'
import { eventCount, type DeploymentPhase, type DeploymentView } from '../../actors/deployment/model.ts'
import { followDeployment } from '../follow-deployment.ts'
import { InvalidAmountError } from '../../ledger/errors.ts'
import { parseNlc } from '../../ledger/units.ts'

function readText(file: string | undefined): string {
  if (!file) throw new UsageError('a workload file is needed (YAML or JSON, see spec/workload.schema.json)')
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`)
  }
}

export function readWorkload(file: string | undefined): Workload {
  return parseWorkload(readText(file), file)
}

/** Reads a workload file, turning the local files it names into artifacts of this node (deploy-artifacts.ts). */
export async function readWorkloadShipping(file: string | undefined, home: string): Promise<{ workload: Workload; shipped: ShippedArtifact[] }> {
  const raw = parseWorkloadText(readText(file), file)
  const { workload, shipped } = await shipLocalArtifacts(raw, { baseDir: dirname(file!), home })
  return { workload: validateWorkload(workload), shipped }
}

const short = (did: string | null): string => (did ? `${did.slice(0, 12)}…${did.slice(-6)}` : '-')
export { short as shortDid }

const time = (at: number): string => new Date(at).toISOString().slice(11, 23)

/**
 * Prints the events not printed yet (`seen`: how many of the deployment's events were printed before, counted
 * from its first, including those no longer kept); returns how many have been printed in all.
 */
export function printEvents(ctx: CommandContext, v: DeploymentView, seen: number): number {
  const total = eventCount(v)
  const first = total - v.events.length
  v.events.forEach((e, i) => {
    if (first + i >= seen) printLine(ctx, `${time(e.at)}  ${e.msg}`)
  })
  return Math.max(seen, total)
}

/**
 * The phases `noir deploy` follows a deployment to: with `--wait`, running (a job: completed) or an end;
 * without, as soon as the work is being provisioned.
 */
export function settledPhases(kind: DeploymentView['kind'], wait: boolean): DeploymentPhase[] {
  if (wait) return kind === 'service' ? ['running', 'completed', 'failed', 'stopped'] : ['completed', 'failed', 'stopped']
  return ['running', 'completed', 'failed', 'stopped', 'provisioning', 'degraded']
}

/** Follows a deployment until its phase is one of `until`, printing its events as they happen (text mode). */
export function follow(ctx: CommandContext, target: DeploymentsTarget, id: string, until: readonly DeploymentPhase[], quiet = ctx.json): Promise<DeploymentView> {
  return followDeployment(ctx, target, id, until, { quiet, print: (v, seen) => printEvents(ctx, v, seen) })
}

/** Errors that mean the daemon may not have answered (the connection dropped, it is restarting). */
const RETRYABLE = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ENOENT', 'ETIMEDOUT', 'UND_ERR_SOCKET'])
const retryable = (err: unknown): boolean => {
  const e = err as { code?: unknown; name?: unknown; message?: unknown }
  return (typeof e.code === 'string' && RETRYABLE.has(e.code)) || e.name === 'NoDaemonError' || e.name === 'GatewayUnreachableError' || (typeof e.message === 'string' && /socket hang up/.test(e.message))
}

/**
 * Sends the create, and sends it again with the same idempotency key while the connection drops before an
 * answer (for up to a minute: a daemon restarting answers again): the daemon returns the same deployment.
 */
async function createWithRetries(ctx: CommandContext, target: DeploymentsTarget, body: { workload: Workload; idempotencyKey: string; reservation?: string }): Promise<DeploymentView> {
  const deadline = Date.now() + 60_000
  for (let attempt = 1; ; attempt++) {
    try {
      return await target.create(body.workload, body.idempotencyKey, body.reservation)
    } catch (err) {
      if (!retryable(err) || Date.now() > deadline || ctx.signal.aborted) throw err
      if (!ctx.json) printLine(ctx, `no answer from the daemon (${(err as Error).message}); sending the create again with its idempotency key (attempt ${attempt + 1})`)
      await new Promise((r) => setTimeout(r, 1000))
    }
  }
}

/**
 * `--max-price NLC` (up to 6 decimals) over the file's `constraints.maxPrice`, in whole µNLC. Read before the
 * file, so a bad value is a usage error (exit 2) whatever the file holds.
 */
export function maxPriceOption(text: string | undefined): ((w: Workload) => Workload) {
  if (text === undefined) return (w) => w
  let micro: bigint
  try {
    micro = parseNlc(text, '--max-price')
  } catch (err) {
    if (err instanceof InvalidAmountError) throw new UsageError(err.message)
    throw err
  }
  return (w) => ({ ...w, constraints: { ...w.constraints, maxPrice: micro.toString() } })
}

export const deployCommand: Command = {
  path: ['deploy'],
  summary: 'deploy a workload (service or job) to the network and show its progress',
  usage: `Usage: noir deploy FILE [--wait] [--idempotency-key KEY] [--max-price NLC] [--reservation ID] [--prepare] [--json]

Validates FILE (YAML or JSON, spec/workload.schema.json) and asks this node's orchestrator to place it:
signed bid request, signed bids, contracts, start. Progress is printed while bidding and starting.
Local files FILE names (runtime.module: ./x.wasm, runtime.bundle: ./actor.ts with its relative imports,
runtime.imageArchive: local for runtime.image in the local Docker, a microVM's runtime.kernel, initrd and
rootfs: ./vmlinuz) become artifacts this node serves, and
the workload names them by digest (spec/artifacts.md); providers fetch and check them before starting.
  --prepare
           only turn local files into artifacts and print the workload that names them (JSON); deploy
           nothing
  --wait   wait until the deployment is running (a job: completed) or has failed; exit 1 if it failed
  --idempotency-key KEY
           the create's key (default: a fresh one per run); when the connection to the daemon drops before
           it answers (the daemon restarted), the create is sent again with the same key: the same
           deployment comes back, never a second one
  --max-price NLC
           the most one replica may cost per hour, in NLC with up to 6 decimals (0.5); replaces the file's
           constraints.maxPrice (which is in µNLC: 1 NLC = 1000000 µNLC)
  --reservation ID
           after \`noir login --gateway URL\`: run inside that capacity reservation (noir capacity; its lane,
           runtime and per-slot resources, at its price, nothing held of its own)
  --json   print the deployment (as \`noir status --json\`) once settled`,
  async run(ctx, argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { wait: { type: 'boolean' }, 'idempotency-key': { type: 'string' }, 'max-price': { type: 'string' }, prepare: { type: 'boolean' }, reservation: { type: 'string' } }, allowPositionals: true })
    if (positionals.length !== 1) throw new UsageError('noir deploy FILE [--wait] [--idempotency-key KEY] [--max-price NLC] [--reservation ID] [--prepare]')
    const withMaxPrice = maxPriceOption(values['max-price'])
    const target = deploymentsTarget(ctx.home)
    if (values.reservation !== undefined && !target.remote) throw new UsageError('--reservation names a capacity reservation at a gateway: noir login --gateway URL first')
    // Local files become artifacts this node serves; through a gateway there is no node of ours to serve
    // them, so the file must name catalog entries or digests (a ./path is refused by the validator).
    const read = target.remote && !values.prepare ? { workload: readWorkload(positionals[0]), shipped: [] } : await readWorkloadShipping(positionals[0], ctx.home)
    const w = withMaxPrice(read.workload)
    if (!ctx.json) for (const s of read.shipped) printLine(ctx, `${s.field}: ${s.source} -> ${s.digest} (${s.bytes} bytes)`)
    if (values.prepare) {
      printJson(ctx, workloadSpec(w))
      return 0
    }
    // announced in the DHT by the daemon (and pinned: kept while this node serves them)
    if (read.shipped.length > 0) await ApiClient.forHome(ctx.home).post('/v1/artifacts/announce', { digests: read.shipped.map((s) => s.digest) })
    const idempotencyKey = values['idempotency-key'] ?? `cli-${randomUUID()}`
    const started = await createWithRetries(ctx, target, { workload: w, idempotencyKey, ...(values.reservation !== undefined ? { reservation: values.reservation } : {}) })
    if (!ctx.json) printLine(ctx, `deployment ${started.id}${target.remote ? ` (through the gateway ${target.where})` : ''}`)
    const wait = values.wait === true
    const v = await follow(ctx, target, started.id, settledPhases(started.kind, wait))
    if (ctx.json) printJson(ctx, v)
    else {
      printLine(ctx, `${v.id}: ${v.phase}${v.reason ? ` (${v.reason})` : ''}`)
      if (v.infeasible?.nearest) printLine(ctx, `nearest candidate: ${v.infeasible.nearest.nodeDid}: ${v.infeasible.nearest.failures.map((f) => `${f.constraint} ${f.detail}`).join(', ')}`)
    }
    return v.phase === 'failed' ? 1 : 0
  },
}
