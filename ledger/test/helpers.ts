// Ledgers in temp folders for tests, closed and removed at teardown.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeKey } from '../../identity/keys.ts'
import { Ledger, STANDARD_ACCOUNTS, type LedgerInit } from '../ledger.ts'

export interface TestLedger {
  ledger: Ledger
  key: NodeKey
  location: string
  /** A settable clock (ms). */
  clock: { now: number }
  reopen(): Promise<Ledger>
}

export async function openTestLedger(t: { teardown(fn: () => Promise<void> | void): void }, o: Partial<LedgerInit> = {}): Promise<TestLedger> {
  const location = mkdtempSync(join(tmpdir(), 'noir-ledger-'))
  const key = o.key ?? NodeKey.generate()
  const clock = { now: 1_700_000_000_000 }
  const init: LedgerInit = { location, key, clock: () => clock.now, checkpointIntervalMs: 0, ...o }
  const tl: TestLedger = {
    ledger: await Ledger.open(init),
    key,
    location,
    clock,
    async reopen() {
      await tl.ledger.close()
      tl.ledger = await Ledger.open(init)
      return tl.ledger
    },
  }
  await tl.ledger.createAccounts(STANDARD_ACCOUNTS)
  t.teardown(async () => {
    await tl.ledger.close().catch(() => undefined)
    rmSync(location, { recursive: true, force: true })
  })
  return tl
}
