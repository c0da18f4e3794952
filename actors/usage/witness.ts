// The consumer as a witness of its providers' ledgers (spec/ledger.md "Cosigned checkpoints"). A provider
// that credited usage this consumer accepted asks it to cosign a checkpoint of its log, with an inclusion
// proof of each receipt (`usage:<contract>:<seq>:nlc`) and a consistency proof from the checkpoint this
// consumer cosigned last. The consumer cosigns only when
//   - the checkpoint is signed by the sender and names the sender's log;
//   - every receipt is in that checkpoint, is the transfer of a record this consumer answered for that
//     provider, and moves exactly the amount it accepted;
//   - the checkpoint extends the last one it cosigned (RFC 6962 consistency), so the provider cannot rewrite
//     or fork what was witnessed.
// It then keeps that checkpoint as its last (per provider). Pure checks over ledger/'s verification functions;
// nothing here reaches the consumer's own ledger.
import type { KvStore } from '../../core/index.ts'
import type { NodeKey } from '../../identity/keys.ts'
import { cosignCheckpoint, verifyCheckpoint, type CheckpointBody, type Cosignature, type SignedCheckpoint } from '../../ledger/checkpoint.ts'
import { verifyConsistency } from '../../ledger/merkle.ts'
import { checkInclusionProofDocument } from '../../ledger/proof-document.ts'
import { LogConsistencyError, ReceiptMismatchError, InvalidUsageError } from '../errors.ts'
import type { KvUsageStore } from './store.ts'

export const MAX_RECEIPTS_PER_REQUEST = 256

/** What a provider sends (`OrchestratorBehavior.cosign`). */
export interface CosignRequest {
  v: 1
  checkpoint: SignedCheckpoint
  receipts: Array<{ contractId: string; seq: number; proof: unknown }>
  /** The consistency proof from the checkpoint this consumer cosigned last (absent for the first). */
  prior?: { size: number; proof: string[] }
}

/** The last checkpoint of a provider's log this consumer cosigned. */
export interface Witnessed {
  size: number
  root: string
}

export interface WitnessPorts {
  key: NodeKey
  usage: KvUsageStore
  /** `<provider DID>` -> the last checkpoint cosigned. */
  witnessed: KvStore<Witnessed>
}

const receiptId = (contractId: string, seq: number): string => `usage:${contractId}:${seq}:nlc`
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

export class CheckpointWitness {
  readonly #p: WitnessPorts
  /** One request per provider at a time: `last` is read and written in order. */
  readonly #chains = new Map<string, Promise<unknown>>()

  constructor(ports: WitnessPorts) {
    this.#p = ports
  }

  /** The last checkpoint of `provider` this node cosigned. */
  last(provider: string): Promise<Witnessed | undefined> {
    return this.#p.witnessed.get(provider)
  }

  cosign(body: unknown, from: string): Promise<Cosignature> {
    const prev = this.#chains.get(from) ?? Promise.resolve()
    const run = prev.then(() => this.#cosign(body, from), () => this.#cosign(body, from))
    const tail = run.catch(() => undefined)
    this.#chains.set(from, tail)
    void tail.then(() => {
      if (this.#chains.get(from) === tail) this.#chains.delete(from)
    })
    return run
  }

  async #cosign(body: unknown, from: string): Promise<Cosignature> {
    if (!isObj(body) || body.v !== 1 || !Array.isArray(body.receipts)) throw new InvalidUsageError('a cosign request is { v: 1, checkpoint, receipts: [...], prior? }')
    const receipts = body.receipts as unknown[]
    if (receipts.length === 0 || receipts.length > MAX_RECEIPTS_PER_REQUEST) throw new InvalidUsageError(`a cosign request names 1 to ${MAX_RECEIPTS_PER_REQUEST} receipts`)
    const cp = verifyCheckpoint(body.checkpoint as SignedCheckpoint, from) // InvalidCheckpointError unless the sender signed its own log
    for (const r of receipts) await this.#checkReceipt(r, cp, from)
    await this.#checkExtends(cp, body.prior, from)
    const cos = cosignCheckpoint(this.#p.key, cp)
    await this.#p.witnessed.put(from, { size: cp.size, root: cp.root })
    return cos
  }

  async #checkReceipt(r: unknown, cp: CheckpointBody, from: string): Promise<void> {
    if (!isObj(r) || typeof r.contractId !== 'string' || !Number.isSafeInteger(r.seq) || (r.seq as number) < 0) throw new InvalidUsageError('a receipt is { contractId, seq, proof }')
    const contractId = r.contractId
    const seq = r.seq as number
    const checked = checkInclusionProofDocument(r.proof, from) // InvalidProofError / InvalidCheckpointError
    if (checked.checkpoint.size !== cp.size || checked.checkpoint.root !== cp.root) throw new ReceiptMismatchError(`the proof of ${receiptId(contractId, seq)} is under another checkpoint than the one to cosign`, { contractId, seq })
    const e = checked.entry
    if (e.kind !== 'transfer' || e.id !== receiptId(contractId, seq) || e.currency !== 'NLC') {
      throw new ReceiptMismatchError(`entry ${checked.index} is not the receipt ${receiptId(contractId, seq)}`, { contractId, seq, entry: checked.index })
    }
    const mine = await this.#p.usage.get(contractId, seq, 'consumer')
    if (!mine || mine.record.body.provider !== from || mine.record.answer === undefined) {
      throw new ReceiptMismatchError(`no usage record ${contractId}#${seq} of ${from} was answered by this node`, { contractId, seq })
    }
    if (BigInt(mine.record.answer.acceptedAmount) !== e.amount) {
      throw new ReceiptMismatchError(`receipt ${e.id} credits ${e.amount} µNLC; this node accepted ${mine.record.answer.acceptedAmount}`, { contractId, seq, credited: String(e.amount), accepted: mine.record.answer.acceptedAmount })
    }
  }

  async #checkExtends(cp: CheckpointBody, prior: unknown, from: string): Promise<void> {
    const last = await this.#p.witnessed.get(from)
    if (!last) return
    const data = { size: last.size, root: last.root }
    if (cp.size < last.size) throw new LogConsistencyError(`the checkpoint at size ${cp.size} is older than the one cosigned last (${last.size})`, data)
    if (cp.size === last.size) {
      if (cp.root !== last.root) throw new LogConsistencyError(`the log of ${from} has another root at size ${cp.size} than the one cosigned`, data)
      return
    }
    if (!isObj(prior) || prior.size !== last.size || !Array.isArray(prior.proof) || prior.proof.length > 128 || !prior.proof.every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h))) {
      throw new LogConsistencyError(`a consistency proof from size ${last.size} is needed`, data)
    }
    const hashes = (prior.proof as string[]).map((h) => new Uint8Array(Buffer.from(h, 'hex')))
    if (!verifyConsistency(last.size, cp.size, Buffer.from(last.root, 'hex'), Buffer.from(cp.root, 'hex'), hashes)) {
      throw new LogConsistencyError(`the log of ${from} at size ${cp.size} does not extend the one cosigned at size ${last.size}`, data)
    }
  }
}
