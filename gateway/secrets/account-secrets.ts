// Customers' secrets (spec/secrets.md): named values per account, sealed at rest under the gateway key,
// listed by name and version only (a value is never answered), and delivered to the node that runs a
// replica naming them, sealed to that node's key, when it starts (answer()). Writing an existing name is a
// rotation: the version goes up and the account's running replicas that name it are started again.
import { Sealer } from '../auth/sealed.ts'
import { InvalidRequestError, NotFoundError } from '../errors.ts'
import { sealTo } from '../../identity/sealed-box.ts'
import { isDidKey } from '../../identity/did-key.ts'
import { secretAad, type SecretAnswer, type SecretRequest } from '../../appliance/secrets/protocol.ts'
import { secretNames, type SecretStore } from './secret-store.ts'
import { MissingSecretError } from './errors.ts'

export const SECRET_NAME = /^[A-Za-z0-9_.-]{1,128}$/
export const MAX_SECRET_BYTES = 64 * 1024
export const MAX_SECRETS_PER_ACCOUNT = 200

export interface SecretView { name: string; version: number; updatedAt: number }
export interface Rotation { deploymentId: string; restarted: string[]; failed: { contractId?: string; error: string }[] }

/** The at-rest associated data: the row opens only for this account, name and version. */
const atRest = (accountId: string, name: string, version: number): string => `noir:gateway-secret:v1\n${accountId}\n${name}\n${version}`

export class AccountSecrets {
  readonly #store: SecretStore
  readonly #sealer: Sealer
  readonly #now: () => number
  readonly #restart: ((deploymentId: string) => Promise<{ restarted: string[]; failed: { contractId: string; error: string }[] }>) | undefined

  constructor(o: { store: SecretStore; sealer: Sealer; now?: () => number; restart?: (deploymentId: string) => Promise<{ restarted: string[]; failed: { contractId: string; error: string }[] }> }) {
    this.#store = o.store
    this.#sealer = o.sealer
    this.#now = o.now ?? Date.now
    this.#restart = o.restart
  }

  /** Creates or rotates `name`; a rotation starts the running replicas that name it again (their answers in `rotated`). */
  async put(accountId: string, name: string, value: unknown): Promise<SecretView & { created: boolean; rotated: Rotation[] }> {
    checkName(name)
    if (typeof value !== 'string') throw new InvalidRequestError('value is a string', { field: 'value' })
    if (Buffer.byteLength(value, 'utf8') > MAX_SECRET_BYTES) throw new InvalidRequestError(`a secret holds at most ${MAX_SECRET_BYTES} bytes`, { field: 'value' })
    const now = this.#now()
    for (let attempt = 0; attempt < 5; attempt++) {
      const old = await this.#store.get(accountId, name)
      if (!old && (await this.#store.count(accountId)) >= MAX_SECRETS_PER_ACCOUNT) throw new InvalidRequestError(`an account holds at most ${MAX_SECRETS_PER_ACCOUNT} secrets`, { field: 'name' })
      const version = (old?.version ?? 0) + 1
      if (!(await this.#store.put({ accountId, name, version, sealed: this.#sealer.seal(value, atRest(accountId, name, version)), updatedAt: now }))) continue
      const rotated: Rotation[] = []
      if (old && this.#restart) {
        for (const deploymentId of await this.#store.deploymentsNaming(accountId, name)) {
          try {
            rotated.push({ deploymentId, ...(await this.#restart(deploymentId)) })
          } catch (err) {
            rotated.push({ deploymentId, restarted: [], failed: [{ error: `${(err as Error).name}: ${(err as Error).message}` }] })
          }
        }
      }
      return { name, version, updatedAt: now, created: !old, rotated }
    }
    throw new InvalidRequestError(`secret ${name} is being written by another request: try again`, { field: 'name' })
  }

  async list(accountId: string): Promise<SecretView[]> {
    return (await this.#store.list(accountId)).map((r) => ({ name: r.name, version: r.version, updatedAt: r.updatedAt }))
  }

  /** Another account's secret is answered like a missing one. */
  async remove(accountId: string, name: string): Promise<void> {
    checkName(name)
    if (!(await this.#store.remove(accountId, name))) throw new NotFoundError(`no secret ${name}`)
  }

  /** Admission: every secret the workload names must exist in the account (MissingSecretError). */
  async admit(accountId: string, names: string[]): Promise<void> {
    const missing: string[] = []
    for (const n of names) if (!(await this.#store.get(accountId, n))) missing.push(n)
    if (missing.length > 0) throw new MissingSecretError(`the workload names secret${missing.length > 1 ? 's' : ''} ${missing.join(', ')} this account does not hold (noir secrets set NAME)`, { missing })
  }

  /**
   * The broker's answer to a node's request (secret-broker.ts): the named secrets of the deployment's account,
   * each sealed to the requesting provider for that contract. A deployment the gateway did not make is
   * `unknown` (the node's own config answers it); a name its workload does not name is refused.
   */
  async answer(r: SecretRequest): Promise<SecretAnswer> {
    const dep = await this.#store.deployment(r.deploymentId)
    if (!dep) return { unknown: true }
    if (typeof r.provider !== 'string' || !isDidKey(r.provider)) return { error: { name: 'SecretRefusedError', message: 'the provider is not a did:key' } }
    const named = new Set(secretNames(dep.workload))
    const out = []
    for (const name of r.names) {
      if (!named.has(name)) return { error: { name: 'SecretRefusedError', message: `deployment ${r.deploymentId} does not name secret ${name}` } }
      const row = await this.#store.get(dep.accountId, name)
      if (!row) return { error: { name: 'SecretUnavailableError', message: `secret ${name} was deleted from the account` } }
      const value = this.#sealer.open(row.sealed, atRest(dep.accountId, name, row.version))
      out.push({ name, version: row.version, box: sealTo(r.provider, value, secretAad(r.contractId, r.provider, name, row.version)) })
    }
    return { secrets: out }
  }
}

function checkName(name: string): void {
  if (typeof name !== 'string' || !SECRET_NAME.test(name)) throw new InvalidRequestError('a secret name is 1-128 of A-Z a-z 0-9 _ . -', { field: 'name' })
}
