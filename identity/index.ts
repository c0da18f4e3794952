// identity/: keys, did:key, addresses, envelopes, capability tokens, keystore. The layer everything else uses.
export * from './errors.ts'
export { NodeKey, verifyEd25519, verifyEd25519ForDid, verifyKeyForDid } from './keys.ts'
export {
  didFromPublicKey,
  publicKeyFromDid,
  publicKeyMultibase,
  isDidKey,
  didFromPeerId,
  peerIdFromDid,
  getDidKeyResolver,
  resolveDidKey,
  x25519FromEd25519PublicKey,
} from './did-key.ts'
export { sealTo, openSealed, MAX_SEALED_BYTES } from './sealed-box.ts'
export { parseAddress, formatAddress, isAddress, MAX_ADDRESS_LENGTH, type ParsedAddress } from './address.ts'
export { canonicalJson, canonicalJsonBytes, MAX_JSON_DEPTH } from './canonical-json.ts'
export {
  signEnvelope,
  signEnvelopeBatch,
  decodeEnvelope,
  decodeWire,
  decodePayload,
  prepareEnvelope,
  prepareEnvelopeFrame,
  didOf,
  randomEnvelopeId,
  EnvelopeVerifier,
  ReplayCache,
  TAG_SINGLE,
  TAG_BATCH,
  DEFAULT_TTL_MS,
  DEFAULT_MAX_BYTES,
  DEFAULT_CLOCK_SKEW_MS,
  DEFAULT_MAX_TTL_MS,
  type Envelope,
  type EnvelopeInit,
  type SignedEnvelope,
  type DecodedWire,
  type EnvelopeVerifierOptions,
  type JsonValue,
} from './envelope.ts'
export { LruCache } from './lru.ts'
export { decodeWireHeader, type WireHeader } from './envelope-wire.ts'
export { SignatureChecker } from './signature-checker.ts'
export {
  KIND_MEMBER,
  KIND_SEAL,
  MEMBER_HEADER,
  encodeMember,
  setMemberHeader,
  encodeSeal,
  decodeStreamFrame,
  isStreamFrame,
  sealRoot,
  signSeal,
  verifySeal,
  standaloneEnvelopes,
  SealedStreamReader,
  type StreamFrame,
} from './sealed-stream.ts'
export { SignatureWorker, type SignatureWorkerOptions } from './signature-worker.ts'
export {
  abilityCovers,
  abilityWithin,
  issueCapability,
  delegateCapability,
  decodeCapabilityChain,
  createRevocation,
  verifyRevocation,
  tokenHash,
  CapabilityVerifier,
  MemoryRevocationStore,
  TAG_REVOKE,
  MAX_CHAIN_LENGTH,
  type Ability,
  type VerifiedCapability,
  type CapabilityClaims,
  type Revocation,
  type RevocationStore,
  type CapabilityVerifierOptions,
} from './capabilities.ts'
export { Keystore, passphraseFrom, keystorePath, SCRYPT_DEFAULTS, type KeystoreFile } from './keystore.ts'
