// The orchestrating node's side of secret delivery (spec/secrets.md): a provider starting an instance asks
// for the secrets its workload names; the node checks the provider runs a live contract of one of its
// deployments and that the workload names each secret, then gets them sealed to that provider:
//  - from its secret broker (the gateway, following GET /v1/secret-requests on the local API), which seals
//    each value to the provider's key: this node relays ciphertext only and never sees a value;
//  - or, for its own deployments (the broker answers `unknown`, or none follows), from its config
//    `orchestration.secrets`, sealed here (the node's owner is then the customer).
import { randomBytes } from 'node:crypto'
import { sealTo } from '../../identity/sealed-box.ts'
import type { StoredContract } from '../../actors/contracts/store.ts'
import type { Workload } from '../../actors/workload/workload.ts'
import { InvalidRequestError } from '../daemon/errors.ts'
import { SecretRefusedError, SecretUnavailableError, UnknownSecretRequestError } from './errors.ts'
import { MAX_SECRETS, SECRET_NAME, secretAad, type SealedSecret, type SecretAnswer, type SecretFetch, type SecretRequest } from './protocol.ts'

export interface SecretRelayInit {
  /** This node's record of a contract it is the consumer of. */
  contract(id: string): Promise<StoredContract | undefined>
  /** The workload of a deployment this node orchestrates. */
  workloadOf(deploymentId: string): Workload | undefined
  /** The node's own secret values by name (config `orchestration.secrets`). */
  own: Record<string, string>
  /** How long a broker has to answer (default 20 s). */
  brokerTimeoutMs?: number
  /**
   * How long a fetch the node's own config cannot answer waits for a broker to follow (default 5 s): the
   * gateway reconnecting after this node restarted, not a failure.
   */
  brokerWaitMs?: number
}

const LIVE: StoredContract['status'][] = ['reserved', 'active']

export function parseSecretFetch(body: unknown): SecretFetch {
  const b = body as Partial<SecretFetch> | null
  if (!b || typeof b !== 'object' || typeof b.contractId !== 'string' || !/^[A-Za-z0-9._:-]{1,200}$/.test(b.contractId)) throw new InvalidRequestError('a secret fetch is { contractId, names }')
  if (!Array.isArray(b.names) || b.names.length === 0 || b.names.length > MAX_SECRETS || !b.names.every((n) => typeof n === 'string' && SECRET_NAME.test(n))) throw new InvalidRequestError(`names: 1-${MAX_SECRETS} secret names`)
  return { contractId: b.contractId, names: [...new Set(b.names)] }
}

export class SecretRelay {
  readonly #o: SecretRelayInit
  readonly #pending = new Map<string, { request: SecretRequest; resolve: (a: SecretAnswer) => void; sent: boolean }>()
  readonly #brokers = new Set<() => void>()
  readonly #awaitingBroker = new Set<() => void>()

  constructor(o: SecretRelayInit) {
    this.#o = o
  }

  /** The secrets `provider` asked for, sealed to it; SecretRefusedError / SecretUnavailableError otherwise. */
  async answer(body: unknown, provider: string): Promise<{ secrets: SealedSecret[] }> {
    const f = parseSecretFetch(body)
    const rec = await this.#o.contract(f.contractId)
    const t = rec?.contract.terms
    // one answer for "not yours", "not live" and "no such contract": nothing about other contracts leaks
    if (!rec || !t || t.provider !== provider || !LIVE.includes(rec.status) || t.role !== 'replica') throw new SecretRefusedError(`no live contract ${f.contractId} of yours here`)
    const named = new Set((this.#o.workloadOf(t.deploymentId)?.secrets ?? []).map((s) => s.name))
    const extra = f.names.find((n) => !named.has(n))
    if (extra !== undefined) throw new SecretRefusedError(`the workload of contract ${f.contractId} does not name secret ${extra}`)
    const request: SecretRequest = { id: `sr_${randomBytes(9).toString('base64url')}`, deploymentId: t.deploymentId, contractId: f.contractId, provider, names: f.names }
    if (this.#brokers.size === 0 && f.names.some((n) => typeof this.#o.own[n] !== 'string')) await this.#brokerFollows(this.#o.brokerWaitMs ?? 5000)
    const a = this.#brokers.size > 0 ? await this.#ask(request) : ({ unknown: true } as const)
    if ('secrets' in a) {
      const missing = f.names.find((n) => !a.secrets.some((s) => s.name === n))
      if (missing !== undefined) throw new SecretUnavailableError(`the broker sent no secret ${missing}`)
      return { secrets: a.secrets.filter((s) => named.has(s.name)) }
    }
    if ('error' in a) throw a.error.name === 'SecretRefusedError' ? new SecretRefusedError(a.error.message) : new SecretUnavailableError(a.error.message)
    return {
      secrets: f.names.map((name) => {
        const v = this.#o.own[name]
        if (typeof v !== 'string') throw new SecretUnavailableError(`secret ${name} has no value on the orchestrating node`)
        return { name, version: 0, box: sealTo(provider, v, secretAad(f.contractId, provider, name, 0)) }
      }),
    }
  }

  /** A broker follows the requests (the local API's NDJSON stream); ends when `signal` aborts. */
  async *follow(signal: AbortSignal): AsyncGenerator<SecretRequest> {
    let wake: (() => void) | undefined
    const poke = (): void => wake?.()
    this.#brokers.add(poke)
    for (const w of this.#awaitingBroker) w()
    signal.addEventListener('abort', poke, { once: true })
    try {
      while (!signal.aborted) {
        const next = [...this.#pending.values()].find((p) => !p.sent)
        if (next) {
          next.sent = true
          yield next.request
          continue
        }
        await new Promise<void>((resolve) => (wake = resolve))
        wake = undefined
      }
    } finally {
      this.#brokers.delete(poke)
      // requests handed to this broker and not answered go to the next one that follows
      for (const p of this.#pending.values()) p.sent = false
      for (const b of this.#brokers) b()
    }
  }

  /** The broker's answer to request `id`. */
  settle(id: string, answer: unknown): void {
    const p = this.#pending.get(id)
    if (!p) throw new UnknownSecretRequestError(`no pending secret request ${id}`)
    this.#pending.delete(id)
    p.resolve(parseAnswer(answer))
  }

  get brokers(): number {
    return this.#brokers.size
  }

  /** Resolves when a broker follows, or after `ms`. */
  #brokerFollows(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#awaitingBroker.delete(done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      timer.unref()
      this.#awaitingBroker.add(done)
    })
  }

  #ask(request: SecretRequest): Promise<SecretAnswer> {
    return new Promise<SecretAnswer>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(request.id)
        resolve({ error: { name: 'SecretUnavailableError', message: 'the secret broker did not answer in time' } })
      }, this.#o.brokerTimeoutMs ?? 20_000)
      timer.unref()
      this.#pending.set(request.id, { request, sent: false, resolve: (a) => { clearTimeout(timer); resolve(a) } })
      for (const b of this.#brokers) b()
    })
  }
}

function parseAnswer(a: unknown): SecretAnswer {
  const o = a as Record<string, unknown> | null
  if (o && typeof o === 'object') {
    if (o.unknown === true) return { unknown: true }
    const e = o.error as { name?: unknown; message?: unknown } | undefined
    if (e && typeof e === 'object' && typeof e.name === 'string' && typeof e.message === 'string') return { error: { name: e.name.slice(0, 64), message: e.message.slice(0, 512) } }
    if (Array.isArray(o.secrets) && o.secrets.length <= MAX_SECRETS && o.secrets.every(isSealed)) return { secrets: o.secrets as SealedSecret[] }
  }
  throw new InvalidRequestError('a secret answer is { secrets: [{ name, version, box }] }, { error: { name, message } } or { unknown: true }')
}

const isSealed = (s: unknown): boolean => {
  const o = s as Partial<SealedSecret> | null
  return !!o && typeof o.name === 'string' && SECRET_NAME.test(o.name) && Number.isSafeInteger(o.version) && (o.version as number) >= 0 && typeof o.box === 'string' && o.box.length <= 400_000
}
