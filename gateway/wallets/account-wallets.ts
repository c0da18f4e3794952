// Each account's DID wallet (spec/gateway.md "Wallets"): an Ed25519 did:key made for the account on first
// use, its seed kept sealed under the gateway key with the account id as context (a sealed seed copied to
// another account's row does not open). The wallet signs the account's API keys (capability tokens). The
// gateway's own identity is kept the same way; its DID is the audience of every API key.
import { NodeKey } from '../../identity/keys.ts'
import type { Sealer } from '../auth/sealed.ts'
import type { TenantStore } from '../store/tenant-store.ts'
import { InvalidDidBindingError, OwnDidWalletError } from '../errors.ts'

const GATEWAY_KEY = 'gateway-identity'

export class AccountWallets {
  readonly #store: TenantStore
  readonly #sealer: Sealer
  readonly #now: () => number
  readonly #keys = new Map<string, NodeKey>()
  #gateway: NodeKey | undefined

  constructor(o: { store: TenantStore; sealer: Sealer; now?: () => number }) {
    this.#store = o.store
    this.#sealer = o.sealer
    this.#now = o.now ?? Date.now
  }

  /** The gateway's own key (made once, then the same across restarts and across gateways on one store). */
  async gatewayKey(): Promise<NodeKey> {
    if (!this.#gateway) {
      const sealed = (await this.#store.meta(GATEWAY_KEY)) ?? (await this.#store.setMetaOnce(GATEWAY_KEY, this.#seal(NodeKey.generate(), GATEWAY_KEY)))
      this.#gateway = this.#open(sealed, GATEWAY_KEY)
    }
    return this.#gateway
  }

  /**
   * The account's wallet key, made on first use. The row is read each time (another gateway on the same
   * database may have bound the customer's own DID since); only the opened key is cached, by DID.
   */
  async keyOf(accountId: string): Promise<NodeKey> {
    let row = await this.#store.wallet(accountId)
    if (row && row.sealedSeed === '') throw new OwnDidWalletError(`the account's wallet is its own ${row.did}: the gateway holds no key for it (sign a key yourself and register it: POST /v1/keys/signed)`, { did: row.did })
    if (!row) {
      const key = NodeKey.generate()
      row = await this.#store.addWallet({ accountId, did: key.did, sealedSeed: this.#seal(key, `wallet:${accountId}`), createdAt: this.#now() })
    }
    const cached = this.#keys.get(accountId)
    if (cached && cached.did === row.did) return cached
    const key = this.#open(row.sealedSeed, `wallet:${accountId}`)
    if (key.did !== row.did) throw new Error(`the wallet of ${accountId} does not match its DID`)
    this.#keys.set(accountId, key)
    return key
  }

  async didOf(accountId: string): Promise<string> {
    const row = await this.#store.wallet(accountId)
    if (row && row.sealedSeed === '') return row.did
    return (await this.keyOf(accountId)).did
  }

  /** True when the account's wallet is the customer's own did:key (bound by a signed challenge). */
  async isOwn(accountId: string): Promise<boolean> {
    return (await this.#store.wallet(accountId))?.sealedSeed === ''
  }

  /** Makes `did` the account's wallet (the signature was checked by the caller); the gateway's key for it is dropped. */
  async bindOwn(accountId: string, did: string): Promise<void> {
    if (!(await this.#store.bindOwnWallet(accountId, did, this.#now()))) throw new InvalidDidBindingError(`${did} is another account's wallet`, { reason: 'taken' })
    this.#keys.delete(accountId)
  }

  /** The store's open DID-binding challenges (did-binding.ts): in the database, so any gateway takes them. */
  get challenges(): Pick<TenantStore, 'setDidChallenge' | 'takeDidChallenge'> {
    return this.#store
  }

  #seal(key: NodeKey, context: string): string {
    return this.#sealer.seal(Buffer.from(key.exportSeed()).toString('base64'), context)
  }

  #open(sealed: string, context: string): NodeKey {
    return NodeKey.fromSeed(new Uint8Array(Buffer.from(this.#sealer.open(sealed, context), 'base64')))
  }
}
