// The workload object (spec/workload.schema.json): parse YAML or JSON, validate against the schema and the
// rules the schema cannot express, and normalize into one typed value with every default filled in.
import { readFileSync } from 'node:fs'
import { parseDocument } from 'yaml'
import { InvalidWorkloadError, WorkloadParseError, type WorkloadIssue } from '../errors.ts'
import { SchemaValidator, type JsonSchema } from '../../core/schema-check.ts'
import { parseQuantity } from './quantity.ts'

export type WorkloadKind = 'service' | 'job'
export type Lane = 'best-effort' | 'protected'
export type RuntimeType = 'container' | 'microvm' | 'wasm' | 'actor'
export type Arch = 'amd64' | 'arm64' | 'riscv64'

export interface WorkloadRuntime {
  type: RuntimeType
  image?: string
  /** Artifact digest of the image's `docker save` archive; `image` is then the image id it holds. */
  imageArchive?: string
  command?: string[]
  kernel?: string
  /** microvm: the initramfs whose /init runs `command` (spec/microvm.md). */
  initrd?: string
  rootfs?: string
  /**
   * microvm: the guest keeps its state on a virtio-blk disk of this many bytes instead of a 9p share; such a
   * replica migrates with its memory (QEMU save and resume; spec/migration.md). Normalized to bytes.
   */
  stateDisk?: number
  module?: string
  bundle?: string
  args?: string[]
  /**
   * container: `process` runs it under gVisor's runsc so a migration carries its memory (spec/migration.md
   * "Process-level checkpoints"); only nodes running runsc bid for it.
   */
  checkpoint?: 'process'
}

/** What one replica needs, in canonical units. */
/**
 * Who may reach an exposed port through an ingress (spec/ingress.md "Access control"): HTTP requests carrying
 * `Authorization: Bearer <key>` whose SHA-256 is listed, or `Bearer <capability token>` issued (directly or by
 * delegation) by `capability.issuer` with an ability covering `/noir/ingress/<deploymentId>/<port>`.
 * A key itself never appears in the workload, only its SHA-256 (64 lower-case hex digits).
 */
export interface PortAccess {
  apiKeys?: string[]
  capability?: { issuer: string }
}

/** New connections per second let through at an ingress, and the burst let through at once (spec/ingress.md "Rate limits"). */
export interface PortRateBucket {
  perSecond: number
  burst: number
}

/** The owner's limits on new connections to a port, per client address and per route, at each ingress. */
export interface PortRateLimit {
  perClient?: PortRateBucket
  perRoute?: PortRateBucket
}

export interface WorkloadPort {
  port: number
  protocol: 'tcp' | 'udp'
  name?: string
  /** `public: true` only when the workload opens the port to ingresses (absent: private; spec/ingress.md). */
  public?: true
  /** Present only when the owner restricts who may use the port through an ingress. */
  access?: PortAccess
  /** Present only when the owner limits new connections (each ingress applies it beside its own limit). */
  rateLimit?: PortRateLimit
}

export interface ResourceRequest {
  /** cores, fractional */
  cpu: number
  memoryBytes: number
  gpu: number
  vramBytes: number
  diskBytes: number
}

export interface Constraints {
  arch?: Arch[]
  region?: string[]
  labels?: Record<string, string>
  maxLatencyMs?: number
  /** µNLC per replica-hour: decimal digits (normalized from a decimal string or a safe integer). Read it with maxPriceOf. */
  maxPrice?: string
  minTrust?: number
  owners?: { allow?: string[]; deny?: string[]; distinct?: boolean }
  /** Only on certified members of the operator's core pool (spec/trust.md "The core pool"). */
  core?: boolean
}

export interface HealthCheck {
  type: 'tcp' | 'http' | 'exec'
  port?: number
  path?: string
  command?: string[]
  intervalSeconds: number
  timeoutSeconds: number
  failureThreshold: number
}

/**
 * How far a service may shrink and grow (spec/ingress.md, "Scale to zero"): `min` 0 lets its replicas stop after
 * `idleSeconds` without traffic through the ingresses; `max` bounds scale-out. `replicas` stays the count
 * started when the service is active, so min <= replicas <= max.
 */
export interface ScaleSpec {
  min: number
  max: number
  idleSeconds: number
  /** Open connections one replica is meant to carry: more through the ingresses and it scales out (up to `max`). */
  targetConnections: number
}

export interface ServiceSpec {
  replicas: number
  restart: 'always' | 'on-failure' | 'never'
  healthCheck?: HealthCheck
  scale?: ScaleSpec
}

export interface JobSpec {
  completions: number
  parallelism: number
  retries: number
  deadlineSeconds?: number
  /** false: its runs are not run again elsewhere to compare outputs (spec/trust.md "Opting out"); absent: they may be. */
  replicate?: false
}

/** A secret a workload names (spec/secrets.md): its value is delivered at start to `env` or `file`. */
export interface SecretRef { name: string; env?: string; file?: string }

/** A validated workload with every default filled in. JSON-serializable (it travels in bid requests). */
export interface Workload {
  apiVersion: 'noir/v1'
  kind: WorkloadKind
  name: string
  runtime: WorkloadRuntime
  resources: ResourceRequest
  constraints: Constraints
  lane: Lane
  service?: ServiceSpec
  job?: JobSpec
  env: Record<string, string>
  /** Each with exactly one target: `env` (a variable) or `file` (a read-only file under /run/secrets; containers). */
  secrets: SecretRef[]
  /** `public: true` only when the workload opens the port to ingresses (absent: private; spec/ingress.md). */
  ports: WorkloadPort[]
  stateDir?: string
  leaseSeconds: number
}

const schemaUrl = new URL('../../spec/workload.schema.json', import.meta.url)
let validator: SchemaValidator | undefined
const schemaValidator = (): SchemaValidator =>
  (validator ??= new SchemaValidator(JSON.parse(readFileSync(schemaUrl, 'utf8')) as JsonSchema, { exactIntegers: true }))

/** The schema itself (for `noir deploy --schema` and tests). */
export function workloadSchema(): JsonSchema {
  return JSON.parse(readFileSync(schemaUrl, 'utf8')) as JsonSchema
}

/** Parses YAML or JSON text (JSON is YAML) into a plain value; throws WorkloadParseError. */
export function parseWorkloadText(text: string, source = 'workload'): unknown {
  const refuse = (why: string): never => {
    throw new WorkloadParseError(`${source} is not valid YAML or JSON: ${why.split('\n')[0]}`, { source })
  }
  try {
    const doc = parseDocument(text, { strict: true, uniqueKeys: true })
    if (doc.errors.length > 0) refuse(doc.errors[0]!.message)
    // Unknown directives and tags are warnings to the library; a workload has no use for them: refused.
    if (doc.warnings.length > 0) refuse(doc.warnings[0]!.message)
    return doc.toJS({ maxAliasCount: 50 })
  } catch (err) {
    if (err instanceof WorkloadParseError) throw err
    return refuse((err as Error).message)
  }
}

/** Parses and validates a workload file's text; throws WorkloadParseError or InvalidWorkloadError. */
export function parseWorkload(text: string, source = 'workload'): Workload {
  return validateWorkload(parseWorkloadText(text, source))
}

export function loadWorkloadFile(path: string): Workload {
  return parseWorkload(readFileSync(path, 'utf8'), path)
}

const DEFAULT_LEASE_S = 3600
/** A microVM's state disk (runtime.stateDisk): from 4 MiB (a small ext2) to 4 GiB (what one state archive may hold). */
const STATE_DISK_MIN = 4 * 2 ** 20
const STATE_DISK_MAX = 4 * 2 ** 30

/** Validates a plain value (schema + rules) and returns the normalized workload; throws InvalidWorkloadError. */
export function validateWorkload(value: unknown): Workload {
  const issues = schemaValidator().validate(value).map(explainCatalogName)
  if (issues.length > 0) throw new InvalidWorkloadError(issues)
  const raw = value as Record<string, any> // oxlint-disable-line typescript/no-explicit-any -- shape checked by the schema above
  const rules: WorkloadIssue[] = []
  const bytes = (q: number | string | undefined, path: string): number => {
    if (q === undefined) return 0
    const n = parseQuantity(q)
    if (n === undefined) rules.push({ path, reason: `is not a byte quantity (got ${JSON.stringify(q)})` })
    return n ?? 0
  }
  const kind = raw.kind as WorkloadKind
  const lane = (raw.lane ?? 'best-effort') as Lane
  if (raw.runtime.imageArchive !== undefined && !ARTIFACT_DIGEST.test(raw.runtime.image)) rules.push({ path: '$.runtime.image', reason: 'with imageArchive, image must be the image id (sha256:<64 hex>) the archive holds: an image from the mesh runs by its id, never by a tag' })
  if (raw.runtime.imageArchive !== undefined && raw.runtime.type !== 'container') rules.push({ path: '$.runtime.imageArchive', reason: 'is only for a container runtime' })
  let runtime: WorkloadRuntime = raw.runtime
  if (raw.runtime.stateDisk !== undefined) {
    const n = bytes(raw.runtime.stateDisk, '$.runtime.stateDisk')
    if (raw.runtime.type !== 'microvm') rules.push({ path: '$.runtime.stateDisk', reason: 'is only for a microvm runtime' })
    else if (raw.runtime.command === undefined) rules.push({ path: '$.runtime.stateDisk', reason: 'needs runtime.command (the noir init mounts the disk at /state)' })
    if (n < STATE_DISK_MIN || n > STATE_DISK_MAX) rules.push({ path: '$.runtime.stateDisk', reason: `must be from 4MiB to 4GiB (got ${n} bytes)` })
    runtime = { ...raw.runtime, stateDisk: n }
  }
  if (raw.runtime.checkpoint !== undefined && (raw.ports?.length ?? 0) > 0) rules.push({ path: '$.runtime.checkpoint', reason: 'a container under runsc has no network here: it cannot have ports (not built)' })
  if (raw.runtime.checkpoint !== undefined && raw.runtime.type !== 'container') rules.push({ path: '$.runtime.checkpoint', reason: 'is only for a container runtime (a microVM is saved by QEMU, an SDK actor by its snapshot)' })
  if (kind === 'service' && raw.job !== undefined) rules.push({ path: '$.job', reason: 'is only for kind: job (this is a service)' })
  if (kind === 'job' && raw.service !== undefined) rules.push({ path: '$.service', reason: 'is only for kind: service (this is a job)' })

  const resources: ResourceRequest = {
    cpu: raw.resources.cpu,
    memoryBytes: bytes(raw.resources.memory, '$.resources.memory'),
    gpu: raw.resources.gpu ?? 0,
    vramBytes: bytes(raw.resources.vram, '$.resources.vram'),
    diskBytes: bytes(raw.resources.disk, '$.resources.disk'),
  }
  if (resources.memoryBytes < 4 * 2 ** 20) rules.push({ path: '$.resources.memory', reason: 'must be at least 4MiB' })
  if (resources.vramBytes > 0 && resources.gpu === 0) rules.push({ path: '$.resources.vram', reason: 'needs resources.gpu >= 1' })

  let service: ServiceSpec | undefined
  let job: JobSpec | undefined
  if (kind === 'service') {
    const s = raw.service ?? {}
    const replicas = s.replicas ?? (lane === 'protected' ? 2 : 1)
    if (lane === 'protected' && replicas < 2) rules.push({ path: '$.service.replicas', reason: 'the protected lane needs at least 2 replicas (on distinct nodes)' })
    let healthCheck: HealthCheck | undefined
    if (s.healthCheck) {
      const h = s.healthCheck
      if ((h.type === 'tcp' || h.type === 'http') && h.port === undefined) rules.push({ path: '$.service.healthCheck.port', reason: `is required for a ${h.type} check` })
      if (h.type === 'http' && h.path === undefined) rules.push({ path: '$.service.healthCheck.path', reason: 'is required for an http check' })
      if (h.type === 'exec' && !(h.command?.length > 0)) rules.push({ path: '$.service.healthCheck.command', reason: 'is required for an exec check' })
      healthCheck = { ...h, intervalSeconds: h.intervalSeconds ?? 10, timeoutSeconds: h.timeoutSeconds ?? 2, failureThreshold: h.failureThreshold ?? 3 }
    }
    let scale: ScaleSpec | undefined
    if (s.scale) {
      const min: number = s.scale.min ?? replicas
      const max: number = s.scale.max ?? Math.max(replicas, min)
      if (min > replicas) rules.push({ path: '$.service.scale.min', reason: `must not exceed service.replicas (${replicas})` })
      if (max < replicas) rules.push({ path: '$.service.scale.max', reason: `must be at least service.replicas (${replicas})` })
      if (min === 0 && lane === 'protected') rules.push({ path: '$.service.scale.min', reason: 'the protected lane keeps its replicas running: it cannot scale to zero' })
      scale = { min, max, idleSeconds: s.scale.idleSeconds ?? 300, targetConnections: s.scale.targetConnections ?? 10 }
    }
    service = { replicas, restart: s.restart ?? 'always', ...(healthCheck ? { healthCheck } : {}), ...(scale ? { scale } : {}) }
  } else {
    const j = raw.job ?? {}
    job = { completions: j.completions ?? 1, parallelism: j.parallelism ?? 1, retries: j.retries ?? 0, ...(j.deadlineSeconds ? { deadlineSeconds: j.deadlineSeconds } : {}), ...(j.replicate === false ? { replicate: false as const } : {}) }
    if (job.parallelism > job.completions) rules.push({ path: '$.job.parallelism', reason: `must not exceed completions (${job.completions})` })
  }

  const env: Record<string, string> = raw.env ?? {}
  const secrets: SecretRef[] = raw.secrets ?? []
  const seen = new Set<string>()
  secrets.forEach((s, i) => {
    if ((s.env === undefined) === (s.file === undefined)) rules.push({ path: `$.secrets[${i}]`, reason: 'needs exactly one target: env or file' })
    if (s.env !== undefined) {
      if (s.env in env) rules.push({ path: `$.secrets[${i}].env`, reason: `${s.env} is also set in env (a secret must not be shadowed by a plain value)` })
      if (seen.has(s.env)) rules.push({ path: `$.secrets[${i}].env`, reason: `${s.env} is set by two secrets` })
      seen.add(s.env)
    }
    if (s.file !== undefined) {
      if (raw.runtime.type !== 'container') rules.push({ path: `$.secrets[${i}].file`, reason: 'a file target is for a container runtime only' })
      if (seen.has(s.file)) rules.push({ path: `$.secrets[${i}].file`, reason: `${s.file} is written by two secrets` })
      seen.add(s.file)
    }
  })
  const owners = raw.constraints?.owners
  if (owners?.allow && owners?.deny) {
    const both = (owners.allow as string[]).filter((d) => (owners.deny as string[]).includes(d))
    if (both.length > 0) rules.push({ path: '$.constraints.owners', reason: `${both[0]} is both allowed and denied` })
  }
  const ports: WorkloadPort[] = (raw.ports ?? []).map(({ public: open, access, rateLimit, ...p }: { port: number; protocol?: 'tcp' | 'udp'; name?: string; public?: boolean; access?: PortAccess; rateLimit?: PortRateLimit }) => ({
    ...p, protocol: p.protocol ?? 'tcp', ...(open === true ? { public: true as const } : {}), ...(access ? { access: normalizedAccess(access) } : {}),
    ...(rateLimit ? { rateLimit } : {}),
  }))
  ports.forEach((p, i) => {
    if (!p.access) return
    if (p.protocol !== 'tcp') rules.push({ path: `$.ports[${i}].access`, reason: 'is for a tcp port only (it is checked on HTTP requests at the ingress)' })
    if (!p.access.apiKeys && !p.access.capability) rules.push({ path: `$.ports[${i}].access`, reason: 'needs apiKeys or capability (or no access section at all)' })
  })
  ports.forEach((p, i) => {
    if (!p.rateLimit) return
    if (p.protocol !== 'tcp') rules.push({ path: `$.ports[${i}].rateLimit`, reason: 'is for a tcp port only (it counts connections at the ingress)' })
    if (!p.rateLimit.perClient && !p.rateLimit.perRoute) rules.push({ path: `$.ports[${i}].rateLimit`, reason: 'needs perClient or perRoute (or no rateLimit section at all)' })
  })
  if (rules.length > 0) throw new InvalidWorkloadError(rules)

  return {
    apiVersion: 'noir/v1',
    kind,
    name: raw.name,
    runtime,
    resources,
    constraints: normalizedConstraints(raw.constraints ?? {}),
    lane,
    ...(service ? { service } : {}),
    ...(job ? { job } : {}),
    env,
    secrets,
    ports,
    ...(raw.stateDir ? { stateDir: raw.stateDir } : {}),
    leaseSeconds: raw.leaseSeconds ?? (job?.deadlineSeconds ? Math.max(10, job.deadlineSeconds) : DEFAULT_LEASE_S),
  }
}

/** Keys sorted and deduplicated, so one access policy has one form (and one contract digest). */
function normalizedAccess(a: PortAccess): PortAccess {
  return {
    ...(a.apiKeys ? { apiKeys: [...new Set(a.apiKeys)].sort() } : {}),
    ...(a.capability ? { capability: { issuer: a.capability.issuer } } : {}),
  }
}

export const ARTIFACT_DIGEST = /^sha256:[0-9a-f]{64}$/

/** The artifacts a workload's runtime names by digest (fetched over the mesh by the provider). */
export function workloadArtifacts(r: WorkloadRuntime): string[] {
  const named = r.type === 'wasm' ? [r.module] : r.type === 'actor' ? [r.bundle] : r.type === 'container' ? [r.imageArchive] : [r.kernel, r.initrd, r.rootfs]
  return named.filter((d): d is string => typeof d === 'string' && ARTIFACT_DIGEST.test(d))
}

const CATALOG_FIELDS = new Set(['$.runtime.module', '$.runtime.bundle', '$.runtime.kernel', '$.runtime.initrd', '$.runtime.rootfs'])

/** A path where a catalog name belongs gets a reason that says why, and what to do instead. */
function explainCatalogName(issue: WorkloadIssue): WorkloadIssue {
  if (!CATALOG_FIELDS.has(issue.path) || !issue.reason.startsWith('does not match')) return issue
  const kind = { '$.runtime.module': 'wasm', '$.runtime.bundle': 'actor', '$.runtime.kernel': 'kernel', '$.runtime.initrd': 'initrd', '$.runtime.rootfs': 'rootfs' }[issue.path]
  return {
    path: issue.path,
    reason: `must name an entry of the provider's catalog (a-z, 0-9, '.', '_', '-'; at most 64) or an artifact digest (sha256:<64 hex>), never a path: a workload runs on other parties' nodes and names nothing on their disks (\`noir deploy\` turns a ./path into an artifact; a node's owner installs a catalog entry with \`noir catalog add ${kind} NAME FILE\`)`,
  }
}

/** Constraints with `maxPrice` as its decimal string (a JSON integer is written as digits). */
function normalizedConstraints(c: Constraints | (Omit<Constraints, 'maxPrice'> & { maxPrice?: number | string })): Constraints {
  if (typeof c.maxPrice !== 'number') return c as Constraints
  return { ...c, maxPrice: String(c.maxPrice) }
}

/** A workload's price limit, µNLC per replica-hour, or undefined when it sets none (the one way code reads it). */
export function maxPriceOf(c: Constraints): bigint | undefined {
  return c.maxPrice === undefined ? undefined : BigInt(c.maxPrice)
}

/** How many copies run at once: service replicas, or job parallelism. */
export function instanceCount(w: Workload): number {
  return w.kind === 'service' ? (w.service?.replicas ?? 1) : (w.job?.parallelism ?? 1)
}

/** The schema form of a normalized workload (byte fields back to `memory`, `vram`, `disk`). */
export function workloadSpec(w: Workload): Record<string, unknown> {
  const { resources: r, ...rest } = w
  return { ...rest, resources: { cpu: r.cpu, memory: r.memoryBytes, gpu: r.gpu, vram: r.vramBytes, disk: r.diskBytes } }
}

/**
 * Checks a normalized workload that arrived from another node (in a bid request or a contract proposal):
 * it must validate like a written one and come back unchanged. Throws InvalidWorkloadError.
 */
export function workloadFromWire(x: unknown): Workload {
  const o = x as { resources?: { memoryBytes?: unknown } } | null
  if (!o || typeof o !== 'object' || !o.resources || typeof o.resources !== 'object' || !('memoryBytes' in o.resources)) {
    throw new InvalidWorkloadError([{ path: '$.resources', reason: 'a normalized workload has resources.memoryBytes' }])
  }
  const w = validateWorkload(workloadSpec(x as Workload))
  if (JSON.stringify(sortKeys(w)) !== JSON.stringify(sortKeys(x))) throw new InvalidWorkloadError([{ path: '$', reason: 'not a normalized workload (defaults missing or extra fields)' }])
  return w
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]))
  return v
}
