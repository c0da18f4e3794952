// Revocations kept in a KvStore (core/kv-store.ts): key `<tokenHash>!<issuer>`, value the JSON record (with
// the revoked token's expiry when known). All records are mirrored in memory at open (revocations are few),
// so the per-message check never touches the disk. The daemon and `noir cap` keep them in NOIR_HOME/revocations.
import { MemoryRevocationStore, type Revocation, type RevocationStore } from '../identity/index.ts'
import type { KvStore } from './kv-store.ts'

/** A revocation as stored: the record and, when known, when the token it revokes expires. */
type StoredRevocation = Revocation & { expiresAt?: number }

export class KvRevocationStore implements RevocationStore {
  readonly #records: KvStore<StoredRevocation>
  readonly #mirror = new MemoryRevocationStore()
  readonly #expiry = new Map<string, number>()

  private constructor(kv: KvStore) {
    this.#records = kv.scope<StoredRevocation>('')
  }

  /** Loads every revocation from `kv`; those of tokens expired by `now` are dropped from it. */
  static async open(kv: KvStore, now = Date.now()): Promise<KvRevocationStore> {
    const store = new KvRevocationStore(kv)
    for await (const [k, rec] of store.#records.entries()) {
      try {
        if (rec.expiresAt !== undefined && rec.expiresAt <= now) {
          await store.#records.del(k) // the token it revoked has expired: nothing can present it any more
          continue
        }
        await store.#mirror.add(rec)
        if (rec.expiresAt !== undefined) store.#expiry.set(k, rec.expiresAt)
      } catch {
        // a record that no longer verifies is ignored (it could not have been added through add())
      }
    }
    return store
  }

  /**
   * Adds a verified revocation. `expiresAt` (the revoked token's own expiry, when known): after it the record
   * is dropped by `prune`, so the store holds only revocations of tokens that could still be presented.
   */
  async add(r: Revocation, o: { expiresAt?: number } = {}): Promise<void> {
    await this.#mirror.add(r) // verifies
    const key = `${r.token}!${r.issuer}`
    await this.#records.put(key, { token: r.token, issuer: r.issuer, at: r.at, sig: r.sig, ...(o.expiresAt !== undefined ? { expiresAt: o.expiresAt } : {}) })
    if (o.expiresAt !== undefined) this.#expiry.set(key, o.expiresAt)
  }

  /** Drops the revocations whose token has expired; returns how many. */
  async prune(now = Date.now()): Promise<number> {
    let n = 0
    for (const [key, exp] of this.#expiry) {
      if (exp > now) continue
      const [hash, issuer] = key.split('!') as [string, string]
      this.#mirror.delete(hash, issuer)
      this.#expiry.delete(key)
      await this.#records.del(key)
      n++
    }
    return n
  }

  has(hash: string, issuer: string): boolean {
    return this.#mirror.revokersOf(hash).includes(issuer)
  }

  countBy(issuer: string): number {
    return this.#mirror.countBy(issuer)
  }

  get size(): number {
    return this.#mirror.size
  }

  isRevoked(hash: string): boolean {
    return this.#mirror.isRevoked(hash)
  }

  revokersOf(hash: string): string[] {
    return this.#mirror.revokersOf(hash)
  }

  /** Every record kept, as stored (with `expiresAt` when known). */
  async list(): Promise<Revocation[]> {
    const out: Revocation[] = []
    for await (const [, v] of this.#records.entries()) out.push(v)
    return out
  }
}
