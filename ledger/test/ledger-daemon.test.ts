// The ledger in a REAL daemon process: a storm of top-ups and transfers through its API from several
// clients at once, kill -9 in the middle, restart: verification passes, every acknowledged operation is in
// the log exactly once (its retry is a replay of the same entry), and once every operation has been retried
// the balances equal the sum of the operations, each counted once. Then the CLI: wallet, replayed top-up,
// prove / check-proof, and a tampered entry (the level store edited while the daemon is stopped) that
// `noir ledger verify` finds and names.
import t from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Level } from 'level'
import { DaemonCluster, NOIR_BIN, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import type { Result } from '../types.ts'
import type { VerifyReport } from '../verify.ts'

interface Op {
  worker: number
  transfers: Array<Record<string, unknown>>
  /** What each transfer adds to which account once applied. */
  effects: Array<{ account: string; amount: bigint }>
}

function noir(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

t.test('kill -9 during a storm of transfers: after restart verify passes, nothing is applied twice or half', async (t) => {
  const cluster = new DaemonCluster()
  t.teardown(() => cluster.cleanup())
  let node: DaemonHandle = await cluster.start({ config: { ledger: { checkpointIntervalMs: 50 } } as never, emptyWallet: true })
  const home = node.home
  const accounts = await node.api.post<{ results: Result[] }>('/v1/ledger/accounts', { accounts: [{ id: 'bob', currency: 'NLC' }, { id: 'carol', currency: 'NLC' }] })
  t.ok(accounts.results.every((r) => r.ok))

  // every op is a top-up, a plain transfer or a pending+post chain: none can fail, so the expected balances
  // are the plain sum of the ops once each is applied once
  const sent: Op[] = []
  const acked = new Map<string, { entry: number }>()
  const storm = { stop: false }
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !storm.stop; i++) {
      const amount = BigInt(1 + ((w * 7919 + i * 104729) % 1000))
      const kind = i % 3
      const op: Op =
        kind === 0
          ? { worker: w, transfers: [{ id: `topup:w${w}-${i}`, debit: 'external:NLC', credit: 'self:NLC', amount: String(amount), currency: 'NLC', ref: `w${w}-${i}` }], effects: [{ account: 'self:NLC', amount }] }
          : kind === 1
            ? { worker: w, transfers: [{ id: `pay-w${w}-${i}`, debit: 'external:NLC', credit: 'bob', amount: String(amount), currency: 'NLC' }], effects: [{ account: 'bob', amount }] }
            : {
                worker: w,
                transfers: [
                  { id: `hold-w${w}-${i}`, debit: 'external:NLC', credit: 'carol', amount: String(amount), currency: 'NLC', flags: ['pending', 'linked'] },
                  { id: `post-w${w}-${i}`, pendingId: `hold-w${w}-${i}`, amount: String(amount - 1n || 1n), flags: ['post_pending'] },
                ],
                effects: [{ account: 'carol', amount: amount - 1n || 1n }],
              }
      sent.push(op)
      try {
        const r = await node.api.post<{ results: Result[] }>('/v1/ledger/transfers', { transfers: op.transfers })
        for (const x of r.results) {
          if (!x.ok) throw new Error(`op refused: ${JSON.stringify(x)}`)
          acked.set(x.id, { entry: x.entry })
        }
      } catch (err) {
        if (!storm.stop && node.running) throw err
        return
      }
    }
  }
  const workers = Array.from({ length: 8 }, (_, w) => worker(w))
  while (acked.size < 600) await new Promise((r) => setTimeout(r, 20))
  storm.stop = true // (workers stop sending; the requests already sent are in flight)
  await node.kill() // kill -9
  await Promise.allSettled(workers)
  t.ok(acked.size >= 600, `${acked.size} transfers acknowledged before the kill, ${sent.length} operations sent`)

  node = await cluster.start({ home })
  const report = await node.api.get<VerifyReport>('/v1/ledger/verify')
  t.same(report.problems, [], 'verification after the crash finds nothing wrong')
  t.ok(report.ok)

  // every acknowledged transfer is in the log, once: its retry is the same entry, replayed
  // retry op by op (chains whole), twice: the second pass must be all replays
  for (const pass of [1, 2]) {
    let replays = 0
    let fresh = 0
    for (let i = 0; i < sent.length; i += 200) {
      const batch = sent.slice(i, i + 200).flatMap((op) => op.transfers)
      const r = await node.api.post<{ results: Result[] }>('/v1/ledger/transfers', { transfers: batch })
      for (const x of r.results) {
        if (!x.ok) {
          t.fail(`pass ${pass}: ${x.id} refused on retry: ${x.result} ${x.message}`)
          continue
        }
        const a = acked.get(x.id)
        if (a && (!x.replay || x.entry !== a.entry)) t.fail(`${x.id} was acknowledged as entry ${a.entry} but its retry answers ${JSON.stringify(x)}`)
        if (x.replay) replays++
        else fresh++
      }
    }
    if (pass === 2) t.equal(fresh, 0, 'the second retry of everything changes nothing')
    t.comment(`retry pass ${pass}: ${replays} replays, ${fresh} applied now`)
  }
  const expected = new Map<string, bigint>()
  for (const op of sent) for (const e of op.effects) expected.set(e.account, (expected.get(e.account) ?? 0n) + e.amount)
  const got = await node.api.get<{ accounts: Array<{ id: string; creditsPosted: string; debitsPosted: string; debitsPending: string; creditsPending: string }> }>('/v1/ledger/accounts')
  for (const [account, amount] of expected) {
    const a = got.accounts.find((x) => x.id === account)!
    t.equal(BigInt(a.creditsPosted) - BigInt(a.debitsPosted), amount, `${account}: every operation counted exactly once`)
    t.equal(a.creditsPending, '0', `${account}: nothing left half-done`)
  }
  const after = await node.api.get<VerifyReport>('/v1/ledger/verify')
  t.same(after.problems, [])

  // ---- the CLI against this daemon -----------------------------------------------------------------------
  const w1 = await noir(home, 'wallet', 'topup', '--amount', '250', '--ref', 'dev-1', '--json')
  t.equal(w1.code, 0, w1.stderr)
  const before = JSON.parse(w1.stdout) as { wallet: { balances: Array<{ currency: string; available: string }> } }
  const w2 = await noir(home, 'wallet', 'topup', '--amount', '250', '--ref', 'dev-1', '--json')
  const replayed = JSON.parse(w2.stdout) as { result: { replay: boolean }; wallet: { balances: Array<{ currency: string; available: string }> } }
  t.equal(replayed.result.replay, true, 'a replayed top-up is a replay')
  t.same(replayed.wallet.balances, before.wallet.balances, 'and changes nothing')
  const w3 = await noir(home, 'wallet', 'topup', '--amount', '251', '--ref', 'dev-1')
  t.equal(w3.code, 1)
  t.match(w3.stderr, /IdempotencyConflictError.*amount/)
  const wallet = await noir(home, 'wallet')
  t.match(wallet.stdout, /NLC {2}available \d+(\.\d{1,6})? /)
  const hist = await noir(home, 'wallet', 'history', '--limit', '3', '--json')
  t.equal((JSON.parse(hist.stdout) as { entries: unknown[] }).entries.length, 3)
  const v = await noir(home, 'ledger', 'verify')
  t.equal(v.code, 0, v.stderr)
  t.match(v.stdout, /ledger verified \(by the daemon\)/)
  const proofFile = join(home, 'proof.json')
  const moved = (JSON.parse((await noir(home, 'wallet', 'history', '--limit', '50', '--json')).stdout) as { entries: Array<{ seq: number; amount?: string }> }).entries
  const transferSeq = String(moved.filter((e) => e.amount !== undefined).at(-1)!.seq) // an early transfer that moves an amount
  const p = await noir(home, 'ledger', 'prove', transferSeq, '--out', proofFile)
  t.equal(p.code, 0, p.stderr)
  const c = await noir(home, 'ledger', 'check-proof', proofFile, '--did', node.did)
  t.equal(c.code, 0, c.stderr)
  t.match(c.stdout, new RegExp(`proof OK: entry ${transferSeq}`))
  const other = await cluster.makeHome()
  const wrong = await noir(home, 'ledger', 'check-proof', proofFile, '--did', (await import('../../identity/keystore.ts')).Keystore.publicDid(other.home))
  t.equal(wrong.code, 1, 'a proof checked against another DID is refused')
  t.match(wrong.stderr, /InvalidCheckpointError/)
  const doc = JSON.parse((await import('node:fs')).readFileSync(proofFile, 'utf8')) as { entry: string }
  t.match(doc.entry, /"amount":"\d+"/, 'the proven entry moves an amount')
  writeFileSync(proofFile, JSON.stringify({ ...doc, entry: doc.entry.replace(/"amount":"(\d+)"/, (_m, a: string) => `"amount":"${BigInt(a) + 1n}"`) }))
  const forged = await noir(home, 'ledger', 'check-proof', proofFile, '--did', node.did)
  t.equal(forged.code, 1, 'a proof whose entry was changed is refused')
  t.match(forged.stderr, /InvalidProofError/)

  // ---- tamper with an entry while the daemon is stopped ---------------------------------------------------
  await node.stop()
  const db = new Level<string, Uint8Array>(join(home, 'ledger'), { keyEncoding: 'utf8', valueEncoding: 'view' })
  const key = 'e:' + (40).toString(16).padStart(12, '0')
  const value = (await db.get(key))!
  const text = Buffer.from(value.subarray(32)).toString('utf8')
  const changed = text.replace(/"amount":"(\d+)"/, (_m, a: string) => `"amount":"${BigInt(a) * 10n}"`)
  t.not(changed, text, 'entry 40 is a transfer whose amount we change')
  await db.put(key, Buffer.concat([value.subarray(0, 32), Buffer.from(changed)]))
  await db.close()
  const bad = await noir(home, 'ledger', 'verify')
  t.equal(bad.code, 1, 'verify exits 1')
  t.match(bad.stderr, /first bad entry: 40/)
  const badJson = await noir(home, 'ledger', 'verify', '--json')
  t.equal((JSON.parse(badJson.stdout) as VerifyReport).firstBadEntry, 40)
})
