// Lucid Evolution's Emulator, recording every transaction it accepts and the block it lands in, so the
// Cardano adapter can read history as it would from a chain indexer. The emulator never forks: a block's
// hash here is derived from its height.
import { createHash } from 'node:crypto'
import { CML, Emulator, type Transaction, type TxHash } from '@lucid-evolution/lucid'
import type { BlockPoint } from '../types.ts'
import type { CardanoChainIndex, IndexedOutput, IndexedTx } from './chain-index.ts'

type Unplaced = Omit<IndexedTx, 'height'>

export class EmulatorChainIndex extends Emulator implements CardanoChainIndex {
  #unplaced: Unplaced[] = []
  #txs: IndexedTx[] = []

  override async submitTx(tx: Transaction): Promise<TxHash> {
    const hash = await super.submitTx(tx)
    const outputs: IndexedOutput[] = Object.values(this.mempool)
      .map((e) => e.utxo)
      .filter((u) => u.txHash === hash)
      .sort((a, b) => a.outputIndex - b.outputIndex)
      .map((u) => ({ index: u.outputIndex, address: u.address, assets: { ...u.assets }, inlineDatum: u.datum ?? undefined }))
    const parsed = CML.Transaction.from_cbor_hex(tx)
    const metadata = new Map<number, unknown>()
    const md = parsed.auxiliary_data()?.metadata()
    if (md) {
      const labels = md.labels()
      for (let i = 0; i < labels.len(); i++) {
        const label = labels.get(i)
        const value = md.get(label)
        if (value) metadata.set(Number(label), JSON.parse(CML.decode_metadatum_to_json_str(value, CML.MetadataJsonSchema.NoConversions)) as unknown)
      }
    }
    const signers: string[] = []
    const vkeys = parsed.witness_set().vkeywitnesses()
    if (vkeys) for (let i = 0; i < vkeys.len(); i++) signers.push(vkeys.get(i).vkey().hash().to_hex())
    this.#unplaced.push({ hash, outputs, metadata, signers })
    return hash
  }

  override awaitBlock(height = 1): void {
    const before = this.blockHeight
    super.awaitBlock(height)
    this.#place(before)
  }

  override awaitSlot(length = 1): void {
    const before = this.blockHeight
    super.awaitSlot(length)
    if (this.blockHeight > before) this.#place(before)
  }

  /** Everything submitted since the last block is in the first block after `before`. */
  #place(before: number): void {
    const height = BigInt(before + 1)
    for (const tx of this.#unplaced) this.#txs.push({ ...tx, height })
    this.#unplaced = []
  }

  async tip(): Promise<BlockPoint> {
    const height = BigInt(this.blockHeight)
    return { height, hash: emulatorBlockHash(height) }
  }

  async blockHash(height: bigint): Promise<string | undefined> {
    return height >= 0n && height <= BigInt(this.blockHeight) ? emulatorBlockHash(height) : undefined
  }

  async txs(from: bigint, to: bigint): Promise<IndexedTx[]> {
    return this.#txs.filter((t) => t.height >= from && t.height <= to)
  }
}

export function emulatorBlockHash(height: bigint): string {
  return createHash('sha256').update(`lucid-emulator-block:${height}`).digest('hex')
}
