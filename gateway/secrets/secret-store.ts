// The gateway's secrets at rest (spec/secrets.md "At rest"): one row per (account, name), the value sealed
// under the gateway key (gateway/auth/sealed.ts) with the account, the name and the version as associated
// data, so a row copied to another account, name or version does not open. Same node:sqlite file as the
// rest of the gateway's state.
import type { DatabaseSync } from 'node:sqlite'
import { Statements } from '../store/statements.ts'

export interface SecretRow { accountId: string; name: string; version: number; sealed: string; updatedAt: number }

interface Row { [k: string]: string | number | null }
const secret = (r: Row): SecretRow => ({ accountId: String(r.account_id), name: String(r.name), version: Number(r.version), sealed: String(r.sealed), updatedAt: Number(r.updated_at) })

export class SecretStore {
  readonly #sql: Statements

  constructor(db: DatabaseSync) {
    this.#sql = new Statements(db)
    db.exec(`CREATE TABLE IF NOT EXISTS secrets (
      account_id TEXT NOT NULL REFERENCES accounts(id), name TEXT NOT NULL, version INTEGER NOT NULL, sealed TEXT NOT NULL, updated_at INTEGER NOT NULL,
      PRIMARY KEY (account_id, name));`)
  }

  get(accountId: string, name: string): SecretRow | undefined {
    const r = this.#sql.get('SELECT * FROM secrets WHERE account_id = ? AND name = ?').get(accountId, name) as Row | undefined
    return r ? secret(r) : undefined
  }

  list(accountId: string): SecretRow[] {
    return (this.#sql.get('SELECT * FROM secrets WHERE account_id = ? ORDER BY name').all(accountId) as Row[]).map(secret)
  }

  count(accountId: string): number {
    return Number((this.#sql.get('SELECT COUNT(*) AS n FROM secrets WHERE account_id = ?').get(accountId) as Row).n)
  }

  /** Writes version `version` if the stored one is `version - 1` (or none, for 1); false when another write won. */
  put(row: SecretRow): boolean {
    if (row.version === 1) {
      return this.#sql.get('INSERT INTO secrets (account_id, name, version, sealed, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(account_id, name) DO NOTHING')
        .run(row.accountId, row.name, row.version, row.sealed, row.updatedAt).changes === 1
    }
    return this.#sql.get('UPDATE secrets SET version = ?, sealed = ?, updated_at = ? WHERE account_id = ? AND name = ? AND version = ?')
      .run(row.version, row.sealed, row.updatedAt, row.accountId, row.name, row.version - 1).changes === 1
  }

  remove(accountId: string, name: string): boolean {
    return this.#sql.get('DELETE FROM secrets WHERE account_id = ? AND name = ?').run(accountId, name).changes === 1
  }

  /** The account owning a deployment and the workload it asked for (normalized JSON), if the gateway made it. */
  deployment(deploymentId: string): { accountId: string; workload: string } | undefined {
    const r = this.#sql.get('SELECT account_id, workload FROM owned_deployments WHERE deployment_id = ?').get(deploymentId) as Row | undefined
    return r ? { accountId: String(r.account_id), workload: String(r.workload) } : undefined
  }

  /** The account's deployments whose workload names secret `name`. */
  deploymentsNaming(accountId: string, name: string): string[] {
    const rows = this.#sql.get('SELECT deployment_id, workload FROM owned_deployments WHERE account_id = ? AND deployment_id IS NOT NULL').all(accountId) as Row[]
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
