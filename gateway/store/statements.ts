// Prepared statements kept per database: node:sqlite compiles the SQL at each prepare(), which cost a read of
// the gateway more than the query itself (bench/gateway.bench.ts). Statements are reused, never shared across
// databases.
import type { DatabaseSync, StatementSync } from 'node:sqlite'

export class Statements {
  readonly #db: DatabaseSync
  readonly #cache = new Map<string, StatementSync>()

  constructor(db: DatabaseSync) {
    this.#db = db
  }

  /** The statement for `sql`, compiled once. */
  get(sql: string): StatementSync {
    let s = this.#cache.get(sql)
    if (!s) this.#cache.set(sql, (s = this.#db.prepare(sql)))
    return s
  }
}
