// The gateway's secrets at rest (spec/secrets.md "At rest"): one row per (account, name), the value sealed
// under the gateway key (gateway/auth/sealed.ts) with the account, the name and the version as associated
// data, so a row copied to another account, name or version does not open. Same database as the rest of
// the gateway's state (store/database.ts).
import type { GatewayDatabase, SqlRow } from '../store/database.ts'

export interface SecretRow { accountId: string; name: string; version: number; sealed: string; updatedAt: number }

type Row = SqlRow
const secret = (r: Row): SecretRow => ({ accountId: String(r.account_id), name: String(r.name), version: Number(r.version), sealed: String(r.sealed), updatedAt: Number(r.updated_at) })

export const SECRET_SCHEMA = `
  CREATE TABLE IF NOT EXISTS secrets (
    account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, version BIGINT NOT NULL, sealed TEXT NOT NULL, updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, name));
`

export class SecretStore {
  readonly #db: GatewayDatabase

  private constructor(db: GatewayDatabase) {
    this.#db = db
  }

  /** The store on `db` (after the auth and tenant stores' tables). */
  static async open(db: GatewayDatabase): Promise<SecretStore> {
    await db.migrate(SECRET_SCHEMA)
    return new SecretStore(db)
  }

  async get(accountId: string, name: string): Promise<SecretRow | undefined> {
    const r = await this.#db.get('SELECT * FROM secrets WHERE account_id = ? AND name = ?', [accountId, name])
    return r ? secret(r) : undefined
  }

  async list(accountId: string): Promise<SecretRow[]> {
    return (await this.#db.all('SELECT * FROM secrets WHERE account_id = ? ORDER BY name', [accountId])).map(secret)
  }

  async count(accountId: string): Promise<number> {
    return Number((await this.#db.get('SELECT COUNT(*) AS n FROM secrets WHERE account_id = ?', [accountId]))!.n)
  }

  /** Writes version `version` if the stored one is `version - 1` (or none, for 1); false when another write won. */
  async put(row: SecretRow): Promise<boolean> {
    if (row.version === 1) {
      return (await this.#db.run('INSERT INTO secrets (account_id, name, version, sealed, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, name) DO NOTHING',
        [row.accountId, row.name, row.version, row.sealed, row.updatedAt])) === 1
    }
    return (await this.#db.run('UPDATE secrets SET version = ?, sealed = ?, updated_at = ? WHERE account_id = ? AND name = ? AND version = ?',
      [row.version, row.sealed, row.updatedAt, row.accountId, row.name, row.version - 1])) === 1
  }

  async remove(accountId: string, name: string): Promise<boolean> {
    return (await this.#db.run('DELETE FROM secrets WHERE account_id = ? AND name = ?', [accountId, name])) === 1
  }

  /** The account owning a deployment and the workload it asked for (normalized JSON), if the gateway made it. */
  async deployment(deploymentId: string): Promise<{ accountId: string; workload: string } | undefined> {
    const r = await this.#db.get('SELECT account_id, workload FROM owned_deployments WHERE deployment_id = ?', [deploymentId])
    return r ? { accountId: String(r.account_id), workload: String(r.workload) } : undefined
  }

  /** The account's deployments whose workload names secret `name`. */
  async deploymentsNaming(accountId: string, name: string): Promise<string[]> {
    const rows = await this.#db.all('SELECT deployment_id, workload FROM owned_deployments WHERE account_id = ? AND deployment_id IS NOT NULL', [accountId])
    return rows.filter((r) => secretNames(String(r.workload)).includes(name)).map((r) => String(r.deployment_id))
  }
}

/** The secret names a recorded workload (normalized JSON) names. */
export function secretNames(workloadJson: string): string[] {
  try {
    const w = JSON.parse(workloadJson) as { secrets?: { name?: unknown }[] }
    return (w.secrets ?? []).map((s) => s.name).filter((n): n is string => typeof n === 'string')
  } catch {
    return []
  }
}
