// Revocations of node certificates on this node (spec/trust.md "Revoking a certificate"): the records it holds
// (kept in its store, so a restart forgets none), those heard on pubsub (noir/cert-revocation/v1), and those an
// owner hands it through the API (`POST /v1/certificates/revocations`, e.g. from `noir owner revoke`), which it
// checks, keeps, publishes and publishes again every `republishMs` (default 60 s) so that nodes that join later
// hear them too. Orchestration asks it whether a bid's certificate was revoked (placement then treats the node
// as its own owner, and not as a core member).
import { CertRevocations, verifyCertRevocation, type CertRevocation } from '../../actors/placement/cert-revocation.ts'
import type { NodeCertificateBody } from '../../actors/placement/node-certificate.ts'
import type { BroadcastMessage } from '../../p2p/pubsub.ts'
import type { ApiRoute, JsonValue, NodeContext, NodeService } from '../daemon/service.ts'

export const CERT_REVOCATION_TOPIC = 'noir/cert-revocation/v1'
/** Store key of a held revocation: its ability, issuer and node (the latest one of each is kept). */
const keyOf = (r: CertRevocation): string => `${r.body.ability}|${r.body.issuer}|${r.body.node}`

export class CertRevocationService implements NodeService {
  readonly name = 'cert-revocations'
  readonly #held = new CertRevocations()
  /** Revocations handed to this node through its API: published again every republishMs. */
  readonly #origin = new Map<string, CertRevocation>()
  readonly #republishMs: number
  #ctx: NodeContext | undefined
  #timer: NodeJS.Timeout | undefined
  #unsubscribe: (() => void) | undefined
  /** Records from the mesh refused, by the error's reason (counted, never logged one by one). */
  readonly refused: Record<string, number> = {}

  constructor(o: { republishMs?: number } = {}) {
    this.#republishMs = o.republishMs ?? 60_000
  }

  async start(ctx: NodeContext): Promise<void> {
    this.#ctx = ctx
    const kept: [string, unknown][] = []
    for await (const entry of ctx.store.entries('held/')) kept.push(entry)
    for (const [key, value] of kept) {
      try {
        const r = verifyCertRevocation(value)
        this.#held.add(r)
        if (key.startsWith('held/origin:')) this.#origin.set(keyOf(r), r)
      } catch {
        await ctx.store.del(key) // too old now (or altered on disk): it can revoke nothing still valid
      }
    }
    this.#unsubscribe = ctx.pubsub.subscribe(CERT_REVOCATION_TOPIC, (m) => void this.#heard(m))
    this.#timer = setInterval(() => {
      for (const r of this.#origin.values()) void this.#publish(r)
    }, this.#republishMs)
    this.#timer.unref()
  }

  stop(): void {
    this.#unsubscribe?.()
    if (this.#timer) clearInterval(this.#timer)
  }

  /** True when the issuer of `c` revoked it (at or after it was issued). */
  revokes(c: NodeCertificateBody): boolean {
    return this.#held.revokes(c)
  }

  /** A revocation an owner hands this node: checked (typed error otherwise), kept, published, republished. */
  async submit(raw: unknown): Promise<{ added: boolean; revocation: CertRevocation }> {
    const r = verifyCertRevocation(raw)
    const added = await this.#keep(r, true)
    this.#origin.set(keyOf(r), r)
    await this.#publish(r)
    return { added, revocation: r }
  }

  async #keep(r: CertRevocation, origin: boolean): Promise<boolean> {
    const added = this.#held.add(r)
    if (added || origin) await this.#ctx!.store.put(`held/${origin ? 'origin:' : ''}${keyOf(r)}`, r as unknown as JsonValue)
    return added
  }

  async #publish(r: CertRevocation): Promise<void> {
    await this.#ctx?.pubsub.publish(CERT_REVOCATION_TOPIC, r as unknown as JsonValue).catch((err: Error) => this.#ctx?.log.info('certificate revocation not published (published again later)', { error: err.message }))
  }

  async #heard(m: BroadcastMessage): Promise<void> {
    try {
      const r = verifyCertRevocation(m.body)
      if (await this.#keep(r, false)) this.#ctx?.log.info('certificate revocation heard', { issuer: r.body.issuer, node: r.body.node, ability: r.body.ability, from: m.from })
    } catch (err) {
      const reason = String((err as { reason?: unknown }).reason ?? (err as Error).name)
      this.refused[reason] = (this.refused[reason] ?? 0) + 1
    }
  }

  status(): JsonValue {
    return { held: this.#held.size, published: this.#origin.size, refused: { ...this.refused } }
  }

  routes(): ApiRoute[] {
    return [
      { method: 'GET', path: '/v1/certificates/revocations', handler: () => ({ revocations: this.#held.list() as unknown as JsonValue }) },
      {
        method: 'POST',
        path: '/v1/certificates/revocations',
        handler: async (req) => {
          const { added, revocation } = await this.submit((req.body as { revocation?: unknown } | undefined)?.revocation)
          return { added, revocation: revocation as unknown as JsonValue }
        },
      },
    ]
  }
}
