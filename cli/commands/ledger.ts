// `noir ledger verify|prove|check-proof|checkpoint`: the tamper evidence of this node's ledger
// (spec/ledger.md). verify asks the running daemon, or reads the store itself when no daemon runs (the
// DID comes from the keystore, never from the store it checks); check-proof needs nothing but the file and
// the DID it should come from.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ApiClient, NoDaemonError } from '../api-client.ts'
import { parseCommandArgs, printJson, printLine, UsageError, type Command, type CommandContext } from '../command.ts'
import type { VerifyReport } from '../../ledger/verify.ts'

async function localReport(home: string): Promise<VerifyReport> {
  const { Keystore } = await import('../../identity/keystore.ts')
  const { openLedgerDb, verifyLedgerDb } = await import('../../ledger/index.ts')
  const did = Keystore.publicDid(home)
  const db = openLedgerDb(join(home, 'ledger'))
  await db.open({ createIfMissing: false })
  try {
    return await verifyLedgerDb(db, did)
  } finally {
    await db.close()
  }
}

function printReport(ctx: CommandContext, r: VerifyReport, where: string): void {
  if (r.ok) {
    printLine(ctx, `ledger verified (${where}): ${r.entries} entries (${r.transfers} transfers), ${r.accounts} accounts, ${r.checkpoints} checkpoints signed by ${r.did}${r.cosignatures > 0 ? `, ${r.cosignatures} cosignatures` : ''}; ${r.unsigned} entries after the latest checkpoint; ${r.elapsedMs} ms`)
    for (const c of ['NLC', 'NLR'] as const) printLine(ctx, `  ${c}: debits = credits = ${r.totals[c].debitsPosted} posted, ${r.totals[c].debitsPending} pending`)
    return
  }
  const first = r.firstBadEntry !== null ? `first bad entry: ${r.firstBadEntry}` : `first problem: ${r.problems[0]?.message ?? 'unknown'}`
  ctx.stderr.write(`noir: ledger verification FAILED (${where}); ${first}\n`)
  for (const p of r.problems.slice(0, 20)) ctx.stderr.write(`  ${p.message}\n`)
}

export const ledgerVerifyCommand: Command = {
  path: ['ledger', 'verify'],
  summary: 'recompute the ledger\'s log, checkpoints, proofs and balances; exit 1 naming the first bad entry',
  usage: `Usage: noir ledger verify [--json]

Asks the running daemon, or (none running) opens NOIR_HOME/ledger itself. Checks every entry against its
recorded hash and canonical form, replays every entry through the ledger's rules, recomputes the Merkle tree
and every checkpoint's root, checks every checkpoint signature (the node's DID, from the keystore) and
cosignature, the idempotency index, the stored balances, and that debits equal credits per currency.
Exit 0 when all holds; 1 otherwise, naming the first bad entry (or checkpoint, or account).
--json prints { ok, did, entries, transfers, accounts, checkpoints, cosignatures, unsigned, latestCheckpoint,
totals, problems: [{ entry?, checkpoint?, account?, message }], firstBadEntry, elapsedMs }.`,
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir ledger verify [--json]' })
    let report: VerifyReport
    let where = 'by the daemon'
    try {
      report = await ApiClient.forHome(ctx.home).get<VerifyReport>('/v1/ledger/verify')
    } catch (err) {
      if (!(err instanceof NoDaemonError)) throw err
      report = await localReport(ctx.home)
      where = 'offline'
    }
    if (ctx.json) printJson(ctx, report)
    else printReport(ctx, report, where)
    return report.ok ? 0 : 1
  },
}

export const ledgerProveCommand: Command = {
  path: ['ledger', 'prove'],
  summary: 'write an inclusion proof of one ledger entry that anyone can check with this node\'s DID',
  usage: `Usage: noir ledger prove ENTRY [--out FILE]

Prints (or writes to FILE) { kind: "noir-ledger-inclusion-proof", v, index, entry, checkpoint, proof }: the
entry's canonical bytes, a checkpoint signed by this node's did:key (with any cosignatures) and the RFC 6962
audit path to its root. Check it anywhere with: noir ledger check-proof FILE --did <this node's DID>.`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommandArgs(argv, { out: { type: 'string' } }, { min: 1, max: 1, usage: 'usage: noir ledger prove ENTRY [--out FILE]' })
    if (!/^[0-9]{1,15}$/.test(positionals[0]!)) throw new UsageError('ENTRY is an entry number (see noir wallet history)')
    const doc = await ApiClient.forHome(ctx.home).get(`/v1/ledger/proof/${positionals[0]}`)
    if (typeof values.out === 'string') {
      writeFileSync(values.out, JSON.stringify(doc, null, 2) + '\n')
      if (!ctx.json) printLine(ctx, `wrote the proof of entry ${positionals[0]} to ${values.out}`)
      else printJson(ctx, { out: values.out })
      return
    }
    printJson(ctx, doc)
  },
}

export const ledgerCheckProofCommand: Command = {
  path: ['ledger', 'check-proof'],
  summary: 'check an inclusion proof file against the DID of the log it claims to come from',
  usage: `Usage: noir ledger check-proof FILE --did DID [--json]

Needs no daemon and no network: checks that the checkpoint names DID as its log and carries DID's signature,
that the entry is canonical and at its index, and that the audit path leads to the signed root (and every
cosignature verifies). Exit 0 when it holds; 1 with the reason otherwise.
--json prints { ok: true, index, entry, checkpoint, cosigners }.`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommandArgs(argv, { did: { type: 'string' } }, { min: 1, max: 1, usage: 'usage: noir ledger check-proof FILE --did DID' })
    if (typeof values.did !== 'string') throw new UsageError('--did (the DID whose log the proof must come from) is required')
    const { checkInclusionProofDocument } = await import('../../ledger/index.ts')
    let doc: unknown
    try {
      doc = JSON.parse(readFileSync(positionals[0]!, 'utf8'))
    } catch (err) {
      throw new UsageError(`cannot read ${positionals[0]}: ${(err as Error).message}`)
    }
    const r = checkInclusionProofDocument(doc, values.did)
    const entry = JSON.parse((doc as { entry: string }).entry) as unknown
    if (ctx.json) return printJson(ctx, { ok: true, index: r.index, entry, checkpoint: r.checkpoint, cosigners: r.cosigners })
    printLine(ctx, `proof OK: entry ${r.index} is in the log of ${values.did} at size ${r.checkpoint.size} (root ${r.checkpoint.root})${r.cosigners.length > 0 ? `, cosigned by ${r.cosigners.join(', ')}` : ''}`)
  },
}

export const ledgerCheckpointCommand: Command = {
  path: ['ledger', 'checkpoint'],
  summary: 'sign a checkpoint of the ledger now and print it',
  usage: `Usage: noir ledger checkpoint [--json]

--json prints { checkpoint: { body: { v, log, size, root, ts }, signature, cosignatures } | null }.`,
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir ledger checkpoint [--json]' })
    const r = await ApiClient.forHome(ctx.home).post<{ checkpoint: { body: { size: number; root: string } } | null }>('/v1/ledger/checkpoints', {})
    if (ctx.json) return printJson(ctx, r)
    printLine(ctx, r.checkpoint ? `checkpoint: size ${r.checkpoint.body.size} root ${r.checkpoint.body.root}` : 'the ledger is empty')
  },
}

export const ledgerCommands: Command[] = [ledgerVerifyCommand, ledgerProveCommand, ledgerCheckProofCommand, ledgerCheckpointCommand]
