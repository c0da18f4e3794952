// NoirClient: the typed TypeScript client of the gateway's API (spec/gateway.md; the OpenAPI document at
// /v1/openapi.json). Credentials are a session (login with email, password and a TOTP code) or an API key.
// Over HTTPS it trusts the system's CAs, or exactly the certificate given as `ca` (a gateway's generated
// self-signed one). Creates carry an idempotency key (made when none is given) and are retried with it after
// a dropped connection, so a retry never makes a second deployment. Logs are an async iterator that
// reconnects with Last-Event-ID and never repeats a line.
import { randomUUID } from 'node:crypto'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { ApiKeyView, Scope } from '../gateway/keys/api-keys.ts'
import type { Rotation, SecretView } from '../gateway/secrets/account-secrets.ts'
import { GatewayUnreachableError, NoirApiError } from './errors.ts'
import { didBindingMessage, type DidChallenge } from '../gateway/wallets/did-binding.ts'

export { GatewayUnreachableError, NoirApiError }
export type { ApiKeyView, Rotation, Scope, SecretView }

export interface NoirClientOptions {
  /** The gateway's base URL, e.g. https://gateway.example:8480 */
  url: string
  /** An API key (capability token); without it, log in first. */
  apiKey?: string
  /** PEM certificate(s) to trust instead of the system's CAs (a gateway's self-signed certificate). */
  ca?: string
  /** Times a create is retried after a dropped connection (default 3). */
  retries?: number
  /** A session token from an earlier `login` (see `session`), e.g. saved by `noir login`. */
  session?: string
}

export interface Account { id: string; email: string; verified: boolean; totp: boolean; recoveryCodesLeft?: number }
export interface ReplicaView { index: number; slot: string; node: string | null; state: string; [k: string]: unknown }
export interface DeploymentView { id: string; name: string; kind: 'service' | 'job'; phase: string; reason: string | null; desired: number; replicas: ReplicaView[]; events: { at: number; msg: string }[]; eventsDropped?: number; [k: string]: unknown }
export interface LogLine { ts: number; stream: string; line: string }
export interface NewApiKey extends ApiKeyView { token: string }
/** Amounts are µNLC as decimal strings (1 NLC = 1,000,000 µNLC). */
/** An open hold at the gateway (spec/billing.md "Running out"): µNLC as decimal strings, times in ms. */
export interface WalletHold { deploymentId: string | null; workload: string; held: string; used: string; short: boolean; stopsAt: number | null; stoppedAt: number | null }
export interface WalletView { did: string; currency: 'NLC'; available: string; pending: string; posted: string; holds: WalletHold[]; deposit: { chain: string; contract: string; accountKey: string } | null }
export interface TopUp { ref: string; amount: string; at: number }
export interface UsageDay { day: string; workload: string; amount: string }
export interface Invoice { id: string; period: string; status: 'open' | 'issued'; issuedAt: number | null; currency: 'NLC'; lines: { deploymentId: string; workload: string; records: number; amount: string }[]; total: string }

/** A capacity request (spec/capacity.md): resources per slot, slots that may run at once, how long. */
export interface CapacityRequest {
  resources: { cpu: number; memory: string | number; gpu?: number; vram?: string | number; disk?: string | number }
  slots: number
  durationSeconds: number
  lane?: 'best-effort' | 'protected'
  runtime?: 'container' | 'wasm' | 'actor'
  constraints?: Record<string, unknown>
}
interface CapacityTerms {
  resources: { cpu: number; memoryBytes: number; gpu: number; vramBytes: number; diskBytes: number }
  slots: number; lane: string; runtime: string; durationSeconds: number; constraints: Record<string, unknown>
  /** µNLC per hour for every slot (and a protected lane's standby); `total` for the whole duration. */
  pricePerHour: string; total: string; slotPriceCap: string
}
export interface CapacityQuote extends CapacityTerms { id: string; quotedBy: { slots: { node: string; pricePerHour: string }[]; standby: { node: string; pricePerHour: string } | null; asked: number; bids: number }; expiresAt: number }
export interface Reservation extends CapacityTerms {
  id: string; quoteId: string; state: 'active' | 'ending' | 'ended'; startsAt: number; endsAt: number; endedAt: number | null
  charged: string | null; slotsUsed: number; deployments: { deploymentId: string; slots: number; running: boolean }[]
}

interface Answer { status: number; headers: IncomingMessage['headers']; body: unknown }

export class NoirClient {
  readonly url: URL
  readonly #apiKey: string | undefined
  readonly #ca: string | undefined
  readonly #retries: number
  #session: string | undefined

  constructor(o: NoirClientOptions) {
    this.url = new URL(o.url)
    if (this.url.protocol !== 'https:' && this.url.protocol !== 'http:') throw new TypeError('the gateway URL is https:// (or http:// for a test)')
    this.#apiKey = o.apiKey
    this.#ca = o.ca
    this.#retries = o.retries ?? 3
    this.#session = o.session
  }

  /** The session token of the last login (a secret: whoever holds it is logged in until it ends). */
  get session(): string | undefined {
    return this.#session
  }

  // ---- account ----
  async signUp(email: string, password: string): Promise<void> {
    await this.#call('POST', '/v1/auth/signup', { email, password })
  }

  async verifyEmail(token: string): Promise<void> {
    await this.#call('POST', '/v1/auth/verify', { token })
  }

  /** Logs in; the session is kept by this client for the calls after. */
  async login(email: string, password: string, totp?: string): Promise<Account> {
    const r = await this.#send('POST', '/v1/auth/login', { email, password, ...(totp !== undefined ? { totp } : {}) })
    const cookie = [r.headers['set-cookie'] ?? []].flat().map((c) => /noir_session=([A-Za-z0-9_-]+)/.exec(c)?.[1]).find((c) => c)
    if (!cookie) throw new NoirApiError({ status: r.status, name: 'ApiProtocolError', code: 'ERR_API_PROTOCOL', detail: 'the login answer set no session' })
    this.#session = cookie
    return (r.body as { account: Account }).account
  }

  async logout(): Promise<void> {
    await this.#call('POST', '/v1/auth/logout', {})
    this.#session = undefined
  }

  account(): Promise<Account> {
    return this.#call('GET', '/v1/account') as Promise<Account>
  }

  /** Starts TOTP enrolment: the secret and its otpauth:// URI, for an authenticator app. */
  enrolTotp(): Promise<{ secret: string; uri: string }> {
    return this.#call('POST', '/v1/auth/totp', {}) as Promise<{ secret: string; uri: string }>
  }

  /** Confirms TOTP with a current code; answers the recovery codes (shown once). */
  async confirmTotp(code: string): Promise<string[]> {
    return ((await this.#call('POST', '/v1/auth/totp/confirm', { code })) as { recoveryCodes: string[] }).recoveryCodes
  }

  // ---- API keys (a session only) ----
  createApiKey(name: string, scopes: Scope[], days?: number): Promise<NewApiKey> {
    return this.#call('POST', '/v1/keys', { name, scopes, ...(days !== undefined ? { days } : {}) }) as Promise<NewApiKey>
  }

  async apiKeys(): Promise<ApiKeyView[]> {
    return ((await this.#call('GET', '/v1/keys')) as { keys: ApiKeyView[] }).keys
  }

  async revokeApiKey(id: string): Promise<void> {
    await this.#call('DELETE', `/v1/keys/${encodeURIComponent(id)}`)
  }

  /** Registers a key your own DID signed (a capability token to the gateway's DID; spec/gateway.md "Your own DID"). */
  registerApiKey(name: string, token: string): Promise<ApiKeyView> {
    return this.#call('POST', '/v1/keys/signed', { name, token }) as Promise<ApiKeyView>
  }

  // ---- your own did:key as the account's wallet (a session only) ----
  /**
   * Binds your own did:key: `sign` gets the bytes to sign (didBindingMessage of gateway/wallets/did-binding.ts)
   * and answers the Ed25519 signature; the private key never leaves you.
   */
  async bindOwnDid(did: string, sign: (message: Uint8Array) => Uint8Array | Promise<Uint8Array>): Promise<{ did: string; own: true }> {
    const c = (await this.#call('POST', '/v1/wallet/did/challenge')) as DidChallenge
    const signature = Buffer.from(await sign(didBindingMessage({ account: c.account, challenge: c.challenge, did, gateway: c.gateway }))).toString('base64url')
    return (await this.#call('PUT', '/v1/wallet/did', { did, signature })) as { did: string; own: true }
  }

  // ---- billing (scope `usage`; spec/billing.md): present when the gateway keeps books ----
  /** The account's NLC wallet: available, pending (held by deploys) and posted µNLC, and where to deposit. */
  wallet(): Promise<WalletView> {
    return this.#call('GET', '/v1/wallet') as Promise<WalletView>
  }

  async topUps(): Promise<TopUp[]> {
    return ((await this.#call('GET', '/v1/wallet/top-ups')) as { topUps: TopUp[] }).topUps
  }

  /** Usage charged per day (of the usage) and workload, `from`..`to` as YYYY-MM-DD (default: the last 30 days). */
  async usageByDay(o: { from?: string; to?: string } = {}): Promise<UsageDay[]> {
    const q = new URLSearchParams({ ...(o.from ? { from: o.from } : {}), ...(o.to ? { to: o.to } : {}) }).toString()
    return ((await this.#call('GET', `/v1/usage${q ? `?${q}` : ''}`)) as { days: UsageDay[] }).days
  }

  async invoices(): Promise<Invoice[]> {
    return ((await this.#call('GET', '/v1/invoices')) as { invoices: Invoice[] }).invoices
  }

  invoice(id: string): Promise<Invoice> {
    return this.#call('GET', `/v1/invoices/${encodeURIComponent(id)}`) as Promise<Invoice>
  }

  // ---- capacity (scope `deploy`; spec/capacity.md): present when the gateway keeps books ----
  /** What the capacity costs now, from the mesh's signed bids; reserve it with `reserveCapacity` before it expires. */
  quoteCapacity(request: CapacityRequest): Promise<CapacityQuote> {
    return this.#call('POST', '/v1/capacity/quotes', request) as Promise<CapacityQuote>
  }

  /** Reserves a quote: its total is held from the wallet and its time starts. Retrying answers the same reservation. */
  reserveCapacity(quoteId: string): Promise<Reservation> {
    return this.#call('POST', '/v1/capacity', { quoteId }) as Promise<Reservation>
  }

  /** Quote and reserve in one go (the quote is in `reservation.quoteId`). */
  async requestCapacity(request: CapacityRequest): Promise<Reservation> {
    return this.reserveCapacity((await this.quoteCapacity(request)).id)
  }

  async reservations(): Promise<Reservation[]> {
    return ((await this.#call('GET', '/v1/capacity')) as { reservations: Reservation[] }).reservations
  }

  reservation(id: string): Promise<Reservation> {
    return this.#call('GET', `/v1/capacity/${encodeURIComponent(id)}`) as Promise<Reservation>
  }

  /** Ends a reservation now: what runs inside stops, the minutes it lasted are charged, the rest released. */
  cancelReservation(id: string): Promise<Reservation> {
    return this.#call('POST', `/v1/capacity/${encodeURIComponent(id)}/cancel`, {}) as Promise<Reservation>
  }

  // ---- secrets (scope `secrets`; spec/secrets.md) ----
  /**
   * Creates or rotates secret `name` (at most 64 KiB). A rotation starts the running replicas that name it
   * again: `rotated` says which did.
   */
  setSecret(name: string, value: string): Promise<SecretView & { created: boolean; rotated: Rotation[] }> {
    return this.#call('PUT', `/v1/secrets/${encodeURIComponent(name)}`, { value }) as Promise<SecretView & { created: boolean; rotated: Rotation[] }>
  }

  /** The account's secrets: names, versions, when each was last set (never a value). */
  async secrets(): Promise<SecretView[]> {
    return ((await this.#call('GET', '/v1/secrets')) as { secrets: SecretView[] }).secrets
  }

  async deleteSecret(name: string): Promise<void> {
    await this.#call('DELETE', `/v1/secrets/${encodeURIComponent(name)}`)
  }

  // ---- workloads ----
  /**
   * Deploys a workload (an object or YAML text), inside capacity reservation `reservation` when given;
   * retried with its idempotency key after a dropped connection.
   */
  async deploy(workload: object | string, o: { idempotencyKey?: string; reservation?: string } = {}): Promise<DeploymentView> {
    const body = { workload, idempotencyKey: o.idempotencyKey ?? randomUUID(), ...(o.reservation !== undefined ? { reservation: o.reservation } : {}) }
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.#call('POST', '/v1/workloads', body)) as DeploymentView
      } catch (err) {
        if (!(err instanceof GatewayUnreachableError) || attempt >= this.#retries) throw err
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt))
      }
    }
  }

  async workloads(): Promise<DeploymentView[]> {
    return ((await this.#call('GET', '/v1/workloads')) as { workloads: DeploymentView[] }).workloads
  }

  /**
   * The deployment's view. With `until` or `events`, a long poll: answered once its phase is one of `until`,
   * or it has had more than `events` events (`eventsDropped + events.length` of a view), or after `waitMs`
   * (default 30 s, at most 60 s); `signal` ends it early (an AbortError).
   */
  async status(id: string, o: { until?: readonly string[]; events?: number; waitMs?: number; signal?: AbortSignal } = {}): Promise<DeploymentView> {
    const q = new URLSearchParams()
    if (o.until !== undefined && o.until.length > 0) q.set('until', o.until.join(','))
    if (o.events !== undefined) q.set('events', String(o.events))
    if (o.waitMs !== undefined && q.size > 0) q.set('waitMs', String(o.waitMs))
    const path = `/v1/workloads/${encodeURIComponent(id)}${q.size > 0 ? `?${q}` : ''}`
    return (await this.#send('GET', path, undefined, o.signal)).body as DeploymentView
  }

  stop(id: string): Promise<DeploymentView> {
    return this.#call('POST', `/v1/workloads/${encodeURIComponent(id)}/stop`, {}) as Promise<DeploymentView>
  }

  usage(id: string): Promise<Record<string, unknown>> {
    return this.#call('GET', `/v1/workloads/${encodeURIComponent(id)}/usage`) as Promise<Record<string, unknown>>
  }

  /**
   * A replica's log lines. With `follow`, keeps reading (reconnecting with Last-Event-ID after a dropped
   * connection, up to `retries` times in a row) until `signal` aborts or the deployment's stream ends.
   */
  async *logs(id: string, o: { replica?: number; follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<LogLine> {
    let last = -1
    let failures = 0
    const path = `/v1/workloads/${encodeURIComponent(id)}/logs?replica=${o.replica ?? 0}${o.follow ? '&follow=1' : ''}`
    for (;;) {
      let res: IncomingMessage
      try {
        res = await this.#open('GET', path, undefined, { ...(last >= 0 ? { 'last-event-id': String(last) } : {}), accept: 'text/event-stream' }, o.signal)
      } catch (err) {
        if (o.signal?.aborted) return
        if (err instanceof GatewayUnreachableError && o.follow && ++failures <= this.#retries) continue
        throw err
      }
      if ((res.statusCode ?? 0) >= 300) throw problemOf(res.statusCode ?? 0, await readJson(res))
      failures = 0
      let buf = ''
      let ended = false
      try {
        for await (const chunk of res) {
          buf += (chunk as Buffer).toString('utf8')
          let cut: number
          while ((cut = buf.indexOf('\n\n')) >= 0) {
            if (o.signal?.aborted) return
            const ev = parseEvent(buf.slice(0, cut))
            buf = buf.slice(cut + 2)
            if (ev.event === 'log') {
              if (ev.id !== undefined) last = ev.id
              yield JSON.parse(ev.data) as LogLine
            } else if (ev.event === 'error') {
              const e = JSON.parse(ev.data) as { name: string; detail: string }
              throw new NoirApiError({ status: 502, name: e.name, code: 'ERR_LOG_STREAM', detail: e.detail })
            } else if (ev.event === 'end') ended = true
          }
        }
      } catch (err) {
        if (o.signal?.aborted) return
        if (err instanceof NoirApiError) throw err
      } finally {
        res.destroy()
      }
      if (ended || !o.follow || o.signal?.aborted) return
    }
  }

  // ---- transport ----
  async #call(method: string, path: string, body?: unknown): Promise<unknown> {
    const r = await this.#send(method, path, body)
    return r.body
  }

  async #send(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Answer> {
    const res = await this.#open(method, path, body, {}, signal)
    const doc = await readJson(res)
    const status = res.statusCode ?? 0
    if (status < 200 || status >= 300) throw problemOf(status, doc)
    return { status, headers: res.headers, body: doc }
  }

  #open(method: string, path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
    const payload = body !== undefined ? Buffer.from(JSON.stringify(body), 'utf8') : undefined
    const auth: Record<string, string> = this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : this.#session ? { cookie: `noir_session=${this.#session}` } : {}
    const u = new URL(path, this.url)
    const request = u.protocol === 'https:' ? httpsRequest : httpRequest
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(u, {
        method,
        headers: { ...auth, ...headers, ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.byteLength) } : {}) },
        ...(this.#ca !== undefined ? { ca: this.#ca } : {}),
        ...(signal ? { signal } : {}),
      }, resolve)
      req.once('error', (err: NodeJS.ErrnoException) => {
        if (signal?.aborted) return reject(err)
        // a certificate the client does not trust is not "unreachable": it is refused, and not retried
        if (err.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(err.code)) return reject(err)
        reject(new GatewayUnreachableError(`the gateway at ${this.url.origin} did not answer (${err.code ?? err.message})`))
      })
      req.end(payload)
    })
  }
}

async function readJson(res: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const c of res) chunks.push(c as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.length === 0) return null
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new NoirApiError({ status: res.statusCode ?? 0, name: 'ApiProtocolError', code: 'ERR_API_PROTOCOL', detail: `the gateway answered ${res.statusCode} with a body that is not JSON` })
  }
}

function problemOf(status: number, doc: unknown): NoirApiError {
  const p = (doc ?? {}) as { name?: unknown; code?: unknown; detail?: unknown; data?: unknown }
  return new NoirApiError({
    status,
    name: typeof p.name === 'string' ? p.name : 'ApiError',
    code: typeof p.code === 'string' ? p.code : 'ERR_API',
    detail: typeof p.detail === 'string' ? p.detail : `the gateway answered ${status}`,
    ...(typeof p.data === 'object' && p.data !== null ? { data: p.data as Record<string, unknown> } : {}),
  })
}

function parseEvent(block: string): { event: string; data: string; id?: number } {
  let event = 'message'
  const data: string[] = []
  let id: number | undefined
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7)
    else if (line.startsWith('data: ')) data.push(line.slice(6))
    else if (line.startsWith('id: ')) id = Number(line.slice(4))
  }
  return { event, data: data.join('\n'), ...(id !== undefined && Number.isSafeInteger(id) ? { id } : {}) }
}
