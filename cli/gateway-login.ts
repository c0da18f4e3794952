// Where the CLI's deployment commands go (spec/cli.md "Against a gateway"): after `noir login --gateway URL`
// the login is kept in NOIR_HOME/gateway-login.json (0600: the gateway URL, the certificate to trust, and a
// session token or an API key) and `noir deploy`, `ps`, `status`, `logs`, `stop` and `usage` talk to that gateway
// through the client SDK; without it (or after `noir logout`) they talk to the local daemon as before.
import { existsSync, readFileSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { NoirClient } from '../client/noir-client.ts'
import { ApiClient } from './api-client.ts'
import type { DeploymentView } from '../actors/orchestrator/orchestrator.ts'
import type { Workload } from '../actors/workload/workload.ts'
import { workloadSpec } from '../actors/workload/workload.ts'
import { UsageError } from './command.ts'
import { deploymentWaitQuery, type DeploymentWait } from '../actors/orchestrator/deployment-wait.ts'

export const LOGIN_FILE = 'gateway-login.json'

export interface GatewayLogin {
  url: string
  /** PEM of the certificate to trust (a gateway's self-signed one); absent: the system's CAs. */
  ca?: string
  session?: string
  apiKey?: string
  email?: string
}

export function readLogin(home: string): GatewayLogin | undefined {
  const file = join(home, LOGIN_FILE)
  if (!existsSync(file)) return undefined
  if ((statSync(file).mode & 0o077) !== 0) throw new UsageError(`${file} is readable by others: remove it and log in again`)
  const v = JSON.parse(readFileSync(file, 'utf8')) as GatewayLogin
  if (typeof v.url !== 'string' || (v.session === undefined && v.apiKey === undefined)) throw new UsageError(`${file} is not a login: remove it and log in again`)
  return v
}

export function saveLogin(home: string, login: GatewayLogin): void {
  const file = join(home, LOGIN_FILE)
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(login, null, 2) + '\n', { mode: 0o600 })
  renameSync(tmp, file)
}

export function forgetLogin(home: string): boolean {
  const file = join(home, LOGIN_FILE)
  if (!existsSync(file)) return false
  rmSync(file)
  return true
}

export function clientOf(login: GatewayLogin): NoirClient {
  return new NoirClient({ url: login.url, ...(login.ca ? { ca: login.ca } : {}), ...(login.apiKey ? { apiKey: login.apiKey } : {}), ...(login.session ? { session: login.session } : {}) })
}

export interface LogDoc { ts?: number; stream?: string; line?: string; node?: string; event?: string; from?: string; to?: string }

/** The deployments API the commands drive: the local daemon's, or a gateway's. */
export interface DeploymentsTarget {
  /** 'this node' or the gateway's URL, for messages. */
  readonly where: string
  readonly remote: boolean
  /** `reservation`: a gateway's capacity reservation to run inside (spec/capacity.md); only through a gateway. */
  create(workload: Workload, idempotencyKey: string, reservation?: string): Promise<DeploymentView>
  list(): Promise<DeploymentView[]>
  status(id: string): Promise<DeploymentView>
  /**
   * The long poll (spec/orchestration.md "Local API"): the view once its phase is one of `wait.until`, it has
   * had more than `wait.events` events, or after `wait.waitMs`; an older server answers at once. `signal`
   * aborts the request in flight.
   */
  watch(id: string, wait: DeploymentWait, signal: AbortSignal): Promise<DeploymentView>
  stop(id: string): Promise<DeploymentView>
  logs(id: string, o: { replica: number; follow: boolean; signal: AbortSignal }): AsyncIterable<LogDoc>
  /** The deployment's signed usage records and totals (spec/ledger.md "Metering"). */
  usage(id: string): Promise<unknown>
}

export function deploymentsTarget(home: string): DeploymentsTarget {
  const login = readLogin(home)
  if (login) {
    const c = clientOf(login)
    return {
      where: login.url, remote: true,
      create: async (w, key, reservation) => (await c.deploy(workloadSpec(w), { idempotencyKey: key, ...(reservation !== undefined ? { reservation } : {}) })) as unknown as DeploymentView,
      list: async () => (await c.workloads()) as unknown as DeploymentView[],
      status: async (id) => (await c.status(id)) as unknown as DeploymentView,
      watch: async (id, w, signal) => (await c.status(id, { ...w, signal })) as unknown as DeploymentView,
      stop: async (id) => (await c.stop(id)) as unknown as DeploymentView,
      logs: (id, o) => c.logs(id, o),
      usage: (id) => c.usage(id),
    }
  }
  const api = () => ApiClient.forHome(home)
  const path = (id: string) => `/v1/deployments/${encodeURIComponent(id)}`
  return {
    where: 'this node', remote: false,
    create: (w, key) => api().post<DeploymentView>('/v1/deployments', { workload: w, idempotencyKey: key }),
    list: async () => (await api().get<{ deployments: DeploymentView[] }>('/v1/deployments')).deployments,
    status: (id) => api().get<DeploymentView>(path(id)),
    watch: (id, w, signal) => api().get<DeploymentView>(`${path(id)}?${deploymentWaitQuery(w)}`, { signal }),
    stop: (id) => api().post<DeploymentView>(`${path(id)}/stop`),
    logs: (id, o) => api().stream<LogDoc>(`${path(id)}/logs?${new URLSearchParams({ replica: String(o.replica), follow: o.follow ? '1' : '0' })}`, { signal: o.signal }),
    usage: (id) => api().get(`${path(id)}/usage`),
  }
}
