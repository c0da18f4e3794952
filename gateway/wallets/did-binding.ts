// A customer's own did:key as the account's wallet (spec/gateway.md "Your own DID"): the gateway hands out a
// single-use challenge (5 minutes); the customer signs, with the DID's Ed25519 key, the bytes
//   "noir:did-binding:v1" 0x00 canonical-JSON({ account, challenge, did, gateway })
// and the gateway checks that signature against the DID alone. A challenge is spent by its first attempt,
// right or wrong. Bound, the account's API keys are capability tokens its owner signs (POST /v1/keys/signed),
// deposits name the new DID's key, and keys issued under the gateway-held wallet stop verifying.
import { randomBytes } from 'node:crypto'
import { canonicalJsonBytes } from '../../identity/canonical-json.ts'
import { isDidKey } from '../../identity/did-key.ts'
import { verifyEd25519ForDid } from '../../identity/keys.ts'
import { InvalidDidBindingError } from '../errors.ts'
import type { AccountWallets } from './account-wallets.ts'

export const DID_BINDING_TAG = 'noir:did-binding:v1'
const CHALLENGE_MS = 5 * 60_000

export interface DidChallenge { account: string; challenge: string; gateway: string; expiresAt: number }

/** The bytes a customer signs to bind `did` to `account` at `gateway` with `challenge`. */
export function didBindingMessage(o: { account: string; challenge: string; did: string; gateway: string }): Uint8Array {
  const body = canonicalJsonBytes({ account: o.account, challenge: o.challenge, did: o.did, gateway: o.gateway })
  const tag = Buffer.from(DID_BINDING_TAG, 'utf8')
  return new Uint8Array(Buffer.concat([tag, Buffer.from([0]), body]))
}

export class DidBinding {
  readonly #wallets: AccountWallets
  readonly #now: () => number

  constructor(o: { wallets: AccountWallets; now?: () => number }) {
    this.#wallets = o.wallets
    this.#now = o.now ?? Date.now
  }

  /** One outstanding challenge per account (kept in the database: any gateway on it takes the answer); a new one replaces it. */
  async challenge(accountId: string): Promise<DidChallenge> {
    const c = { challenge: randomBytes(32).toString('base64url'), expiresAt: this.#now() + CHALLENGE_MS }
    await this.#wallets.challenges.setDidChallenge(accountId, c.challenge, c.expiresAt)
    return { account: accountId, challenge: c.challenge, gateway: (await this.#wallets.gatewayKey()).did, expiresAt: c.expiresAt }
  }

  /** Checks the signature over the account's open challenge and binds `did`; InvalidDidBindingError (data.reason) otherwise. */
  async bind(accountId: string, did: string, signatureB64u: string): Promise<{ did: string; own: true }> {
    const open = await this.#wallets.challenges.takeDidChallenge(accountId) // spent by this attempt, whatever comes of it
    if (!open) throw new InvalidDidBindingError('ask for a challenge first (POST /v1/wallet/did/challenge)', { reason: 'no-challenge' })
    if (this.#now() >= open.expiresAt) throw new InvalidDidBindingError('the challenge has expired: ask for another', { reason: 'expired' })
    if (typeof did !== 'string' || !isDidKey(did)) throw new InvalidDidBindingError('did must be an Ed25519 did:key', { reason: 'not-ed25519' })
    const sig = /^[A-Za-z0-9_-]{86}$/.test(signatureB64u) ? Buffer.from(signatureB64u, 'base64url') : Buffer.alloc(0)
    const message = didBindingMessage({ account: accountId, challenge: open.challenge, did, gateway: (await this.#wallets.gatewayKey()).did })
    let ok = false
    try {
      ok = sig.length === 64 && verifyEd25519ForDid(did, message, sig)
    } catch {
      ok = false
    }
    if (!ok) throw new InvalidDidBindingError('the signature does not verify with that DID over this challenge', { reason: 'signature' })
    await this.#wallets.bindOwn(accountId, did)
    return { did, own: true }
  }
}
