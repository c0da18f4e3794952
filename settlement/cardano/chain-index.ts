// What the Cardano adapter reads: transactions by block height. On a real network this is a chain indexer
// (Kupo, Ogmios chain-sync, Blockfrost; not built here); EmulatorChainIndex gives it for Lucid's emulator,
// whose own provider answers only the current UTxO set (no history, no metadata).
import type { BlockPoint } from '../types.ts'

export interface IndexedOutput {
  index: number
  address: string
  /** Units (`lovelace`, policy id + asset name hex) to quantities. */
  assets: Record<string, bigint>
  /** The inline datum's CBOR hex; undefined for none or a datum hash. */
  inlineDatum: string | undefined
}

export interface IndexedTx {
  hash: string
  height: bigint
  outputs: IndexedOutput[]
  /** Transaction metadata by label, as JSON values (CML's no-conversion schema). */
  metadata: Map<number, unknown>
  /** Hashes (hex) of the keys that signed the transaction. */
  signers: string[]
}

export interface CardanoChainIndex {
  tip(): Promise<BlockPoint>
  blockHash(height: bigint): Promise<string | undefined>
  /** Transactions in blocks `from..to`, in chain order. */
  txs(from: bigint, to: bigint): Promise<IndexedTx[]>
}
