// Revocations reach the running daemon and the mesh (spec/capabilities.md "Revocation"). The daemon's
// capability checker consults this node's revocation store on every check; `noir cap revoke` goes through
// the API when the daemon runs (the daemon signs with the node's key, stores, and broadcasts on
// noir/revocation/v1), and every node keeps the revocations it hears that can matter to it.
// Bounded: a revocation from the mesh is kept only when it comes with its token, the token's chain is rooted
// in one of this node's trusted roots, its signer issued a link of that chain, and the token has not expired;
// it is dropped when the token expires; and one issuer may hold at most MAX_PER_ISSUER of them.
import { createRevocation, decodeCapabilityChain, tokenHash, verifyRevocation, type Revocation } from '../../identity/index.ts'
import type { KvRevocationStore } from '../../core/index.ts'
import { InvalidRevocationError } from '../../identity/errors.ts'
import type { NodeKey } from '../../identity/keys.ts'
import type { Broadcast, BroadcastMessage } from '../../p2p/pubsub.ts'
import type { Log } from '../../p2p/log.ts'
import type { JsonValue } from './service.ts'

export const REVOCATION_TOPIC = 'noir/revocation/v1'
/** Most revocations one issuer may have in a node's store. */
export const MAX_PER_ISSUER = 1000

export interface RevocationAnnouncement {
  revocation: Revocation
  /** The revoked token itself: how a node sees that the revocation concerns a chain it trusts, and until when. */
  token: string
}

export class RevocationSync {
  readonly #store: KvRevocationStore
  readonly #key: NodeKey
  readonly #roots: () => readonly string[]
  readonly #log: Log
  readonly #now: () => number
  #broadcast: Broadcast | undefined
  #unsubscribe: (() => void) | undefined
  #timer: NodeJS.Timeout | undefined
  /** Mesh revocations refused, by reason (logged as counts, never one line each). */
  readonly refused = new Map<string, number>()

  constructor(o: { store: KvRevocationStore; key: NodeKey; roots: () => readonly string[]; log: Log; now?: () => number }) {
    this.#store = o.store
    this.#key = o.key
    this.#roots = o.roots
    this.#log = o.log
    this.#now = o.now ?? Date.now
  }

  start(broadcast: Broadcast): void {
    this.#broadcast = broadcast
    this.#unsubscribe = broadcast.subscribe(REVOCATION_TOPIC, (m) => void this.#heard(m))
    this.#timer = setInterval(() => {
      void this.#store.prune(this.#now())
      if (this.refused.size > 0) {
        this.#log.info('revocations from the mesh refused', Object.fromEntries(this.refused))
        this.refused.clear()
      }
    }, 60_000)
    this.#timer.unref()
  }

  stop(): void {
    this.#unsubscribe?.()
    if (this.#timer) clearInterval(this.#timer)
  }

  /** The owner revokes a token through the API: signed with this node's key, stored, announced. */
  async revoke(token: string): Promise<Revocation> {
    const r = createRevocation(this.#key, token, this.#now()) // InvalidRevocationError unless this node issued a link
    await this.accept({ revocation: r, token }, { own: true })
    await this.#broadcast?.publish(REVOCATION_TOPIC, { revocation: r, token } as unknown as JsonValue).catch((err: Error) =>
      this.#log.warn('revocation not broadcast (kept here; announce it again with noir cap revoke)', { error: err.name, message: err.message }))
    return r
  }

  /** Checks an announcement and keeps it when it can matter here. Throws InvalidRevocationError otherwise. */
  async accept(a: RevocationAnnouncement, o: { own?: boolean } = {}): Promise<'added' | 'known'> {
    if (typeof a !== 'object' || a === null || typeof a.token !== 'string' || typeof a.revocation !== 'object' || a.revocation === null) {
      throw new InvalidRevocationError('an announcement is { revocation, token }')
    }
    const r = a.revocation
    verifyRevocation(r)
    if (tokenHash(a.token) !== r.token) throw new InvalidRevocationError('the token does not match the revocation\'s hash')
    const chain = decodeCapabilityChain(a.token)
    if (!chain.some((c) => c.iss === r.issuer)) throw new InvalidRevocationError('the revoker issued no link of the token\'s chain')
    const roots = this.#roots()
    if (!o.own && !roots.includes(chain[chain.length - 1]!.iss)) throw new InvalidRevocationError('the token\'s chain is not rooted in a root this node trusts')
    const expiresAt = Math.min(...chain.map((c) => c.exp * 1000))
    if (expiresAt <= this.#now()) throw new InvalidRevocationError('the token has expired already')
    if (this.#store.has(r.token, r.issuer)) return 'known'
    if (this.#store.countBy(r.issuer) >= MAX_PER_ISSUER) throw new InvalidRevocationError(`issuer ${r.issuer} has ${MAX_PER_ISSUER} revocations here already`)
    await this.#store.add(r, { expiresAt })
    return 'added'
  }

  async #heard(m: BroadcastMessage): Promise<void> {
    try {
      if ((await this.accept(m.body as unknown as RevocationAnnouncement)) === 'added') {
        this.#log.info('revocation heard', { from: m.from, token: (m.body as unknown as RevocationAnnouncement).revocation.token })
      }
    } catch (err) {
      const reason = (err as Error).name
      this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1)
    }
  }

  list(): Promise<Revocation[]> {
    return this.#store.list()
  }

  get size(): number {
    return this.#store.size
  }
}
