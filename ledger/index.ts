// ledger/: one party's double-entry ledger (NLC and NLR) in level, with an RFC 6962 Merkle log, signed and
// cosigned checkpoints, inclusion and consistency proofs, and offline verification (spec/ledger.md).
export * from './errors.ts'
export * from './types.ts'
export { parseAmount, checkAmount, U128_MAX } from './amount.ts'
export { Ledger, STANDARD_ACCOUNTS, okOrThrow, type LedgerInit, type WalletBalance } from './ledger.ts'
export { verifyLedgerDb, type VerifyReport, type VerifyProblem } from './verify.ts'
export { openLedgerDb, Keys, type LedgerDb } from './store.ts'
export { signCheckpoint, cosignCheckpoint, verifyCheckpoint, verifyCosignature, checkpointBody, type SignedCheckpoint, type CheckpointBody, type Cosignature } from './checkpoint.ts'
export { checkInclusionProofDocument, inclusionProofDocument, PROOF_KIND, type InclusionProofDocument, type CheckedProof } from './proof-document.ts'
export { leafHash, nodeHash, verifyInclusion, verifyConsistency, inclusionProof, consistencyProof, MemoryTree, Frontier, EMPTY_ROOT, type Hash } from './merkle.ts'
export { encodeEntry, decodeEntry } from './entry-codec.ts'
export { conversionTransfers, type ConversionPolicy } from './conversion.ts'
