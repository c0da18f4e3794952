// The SQL database behind the gateway's stores (spec/gateway.md "Storage"): the embedded default, one
// node:sqlite file that needs no server, or PostgreSQL, which several gateway processes share. The stores
// speak one small async interface and one SQL dialect (`?` placeholders, BIGINT for milliseconds,
// ON CONFLICT, RETURNING, IS DISTINCT FROM: all understood by both), so no store knows which it talks to.
import { DatabaseSync } from 'node:sqlite'
import { Pool, types as pgTypes, type PoolClient } from 'pg'
import { GatewayDatabaseError } from '../errors.ts'
import { Statements } from './statements.ts'

export type SqlValue = string | number | null
export interface SqlRow { [column: string]: SqlValue }

/** The queries a store may run; also what a transaction hands its body. */
export interface SqlQueries {
  /** Runs a statement; the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>
  get(sql: string, params?: readonly SqlValue[]): Promise<SqlRow | undefined>
  all(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]>
}

export interface GatewayDatabase extends SqlQueries {
  readonly kind: 'sqlite' | 'postgres'
  /**
   * Creates the schema (idempotent DDL, statements separated by `;`). Several gateways starting at once on
   * one PostgreSQL take turns (an advisory lock), so none trips over another's half-made table.
   */
  migrate(ddl: string): Promise<void>
  /** Runs `body` in one transaction: all of its statements take effect, or none. */
  transaction<T>(body: (tx: SqlQueries) => Promise<T>): Promise<T>
  close(): Promise<void>
}

/** Where the gateway keeps its state: a postgres:// URL, else the node:sqlite file at `sqlitePath`. */
export async function openGatewayDatabase(o: { url?: string; sqlitePath: string }): Promise<GatewayDatabase> {
  if (o.url !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(o.url)) throw new GatewayDatabaseError('the gateway database is a postgres:// URL (or none, for the embedded node:sqlite file)')
    const db = new PostgresDatabase(o.url)
    await db.ping()
    return db
  }
  return new SqliteDatabase(o.sqlitePath)
}

/** The embedded default: one node:sqlite file in WAL mode, every write durable (synchronous = FULL). */
export class SqliteDatabase implements GatewayDatabase {
  readonly kind = 'sqlite'
  readonly #db: DatabaseSync
  readonly #sql: Statements
  /** A transaction's body awaits: statements of other requests wait for it rather than join it. */
  #turn: Promise<unknown> = Promise.resolve()
  #inTransaction = false

  constructor(path: string) {
    this.#db = new DatabaseSync(path)
    this.#sql = new Statements(this.#db)
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;')
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    if (this.#inTransaction) await this.#turn
    return Number(this.#sql.get(sql).run(...params).changes)
  }

  async get(sql: string, params: readonly SqlValue[] = []): Promise<SqlRow | undefined> {
    if (this.#inTransaction) await this.#turn
    return this.#sql.get(sql).get(...params) as SqlRow | undefined
  }

  async all(sql: string, params: readonly SqlValue[] = []): Promise<SqlRow[]> {
    if (this.#inTransaction) await this.#turn
    return this.#sql.get(sql).all(...params) as SqlRow[]
  }

  async migrate(ddl: string): Promise<void> {
    this.#db.exec(ddl)
  }

  async transaction<T>(body: (tx: SqlQueries) => Promise<T>): Promise<T> {
    const before = this.#turn
    let done!: () => void
    this.#turn = new Promise<void>((resolve) => (done = resolve))
    await before
    this.#inTransaction = true
    const tx: SqlQueries = {
      run: async (sql, params = []) => Number(this.#sql.get(sql).run(...params).changes),
      get: async (sql, params = []) => this.#sql.get(sql).get(...params) as SqlRow | undefined,
      all: async (sql, params = []) => this.#sql.get(sql).all(...params) as SqlRow[],
    }
    this.#db.exec('BEGIN IMMEDIATE')
    try {
      const out = await body(tx)
      this.#db.exec('COMMIT')
      return out
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    } finally {
      this.#inTransaction = false
      done()
    }
  }

  async close(): Promise<void> {
    this.#db.close()
  }
}

/** Milliseconds and counts are BIGINT; JavaScript numbers hold them exactly (< 2^53), so they come back as numbers. */
const INT8_OID = 20
const types = { getTypeParser: ((oid: number, format?: string) => (oid === INT8_OID ? (v: string) => Number(v) : pgTypes.getTypeParser(oid, format as 'text'))) as typeof pgTypes.getTypeParser }

/** `?` placeholders become `$1, $2, ...` (the stores' SQL holds no `?` inside string literals). */
const numbered = new Map<string, string>()
function toPostgres(sql: string): string {
  let out = numbered.get(sql)
  if (out === undefined) {
    let n = 0
    out = sql.replace(/\?/g, () => `$${++n}`)
    numbered.set(sql, out)
  }
  return out
}

type PgQueryable = Pick<Pool | PoolClient, 'query'>
function pgQueries(q: PgQueryable): SqlQueries {
  return {
    run: async (sql, params = []) => (await q.query(toPostgres(sql), params as SqlValue[])).rowCount ?? 0,
    get: async (sql, params = []) => (await q.query<SqlRow>(toPostgres(sql), params as SqlValue[])).rows[0],
    all: async (sql, params = []) => (await q.query<SqlRow>(toPostgres(sql), params as SqlValue[])).rows,
  }
}

/** PostgreSQL through a connection pool (node-postgres); the URL, which may hold a password, is never logged. */
export class PostgresDatabase implements GatewayDatabase {
  readonly kind = 'postgres'
  readonly #pool: Pool
  readonly #q: SqlQueries

  constructor(url: string, max = 10) {
    this.#pool = new Pool({ connectionString: url, max, types, idleTimeoutMillis: 30_000 })
    // an idle client's error (the server restarted) must not end the process; the next query reconnects
    this.#pool.on('error', () => undefined)
    this.#q = pgQueries(this.#pool)
  }

  async ping(): Promise<void> {
    try {
      await this.#pool.query('SELECT 1')
    } catch (err) {
      // the message of a failed connection names host and user, never the password
      throw new GatewayDatabaseError(`PostgreSQL does not answer: ${(err as Error).message}`, { cause: (err as Error).name })
    }
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> { return this.#q.run(sql, params) }
  get(sql: string, params?: readonly SqlValue[]): Promise<SqlRow | undefined> { return this.#q.get(sql, params) }
  all(sql: string, params?: readonly SqlValue[]): Promise<SqlRow[]> { return this.#q.all(sql, params) }

  async migrate(ddl: string): Promise<void> {
    const c = await this.#pool.connect()
    try {
      await c.query('BEGIN')
      await c.query("SELECT pg_advisory_xact_lock(hashtext('noir-gateway-schema'))")
      for (const stmt of ddl.split(';').map((s) => s.trim()).filter((s) => s.length > 0 && !/^PRAGMA\b/i.test(s))) await c.query(stmt)
      await c.query('COMMIT')
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined)
      throw err
    } finally {
      c.release()
    }
  }

  async transaction<T>(body: (tx: SqlQueries) => Promise<T>): Promise<T> {
    const c = await this.#pool.connect()
    try {
      await c.query('BEGIN')
      const out = await body(pgQueries(c))
      await c.query('COMMIT')
      return out
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined)
      throw err
    } finally {
      c.release()
    }
  }

  async close(): Promise<void> {
    await this.#pool.end()
  }
}
