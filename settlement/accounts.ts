// Accounts appear on chain only as a 32-byte key: sha256 of the account's DID (UTF-8). Deposits name that
// key; the directory turns it back into the DID the ledger knows.
import { createHash } from 'node:crypto'

/** 32-byte account key as lowercase hex without 0x (64 digits). */
export type AccountKey = string

export function accountKey(did: string): AccountKey {
  return createHash('sha256').update(did, 'utf8').digest('hex')
}

/** Resolves an account key back to the account (DID) it was made from; undefined when unknown. */
export interface AccountDirectory {
  lookup(key: AccountKey): string | undefined
}

/** A directory over a known list of accounts (the ledger's, or a test's). */
export class ListedAccounts implements AccountDirectory {
  readonly #byKey = new Map<AccountKey, string>()

  constructor(accounts: Iterable<string> = []) {
    for (const did of accounts) this.add(did)
  }

  add(did: string): AccountKey {
    const key = accountKey(did)
    this.#byKey.set(key, did)
    return key
  }

  lookup(key: AccountKey): string | undefined {
    return this.#byKey.get(key.toLowerCase().replace(/^0x/, ''))
  }
}
