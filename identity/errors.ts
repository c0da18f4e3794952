// Every failure in identity/ is one class with a stable `name` and `code`; callers branch on the class,
// the name or the code, never on message text. Messages never contain key material.

export class IdentityError extends Error {
  override readonly name: string = 'IdentityError'
  readonly code: string = 'ERR_IDENTITY'
}

// ---- keys, DIDs, addresses -------------------------------------------------------------------------------

/** A string that is not a did:key for an Ed25519 public key. */
export class InvalidDidError extends IdentityError {
  override readonly name: string = 'InvalidDidError'
  override readonly code: string = 'ERR_INVALID_DID'
}

/** An actor address that is not `did:key:z6Mk...` followed by an optional `/path`. */
export class InvalidAddressError extends IdentityError {
  override readonly name: string = 'InvalidAddressError'
  override readonly code: string = 'ERR_INVALID_ADDRESS'
}

/** Key material of the wrong length or kind (e.g. a seed that is not 32 bytes, a non-Ed25519 libp2p key). */
export class InvalidKeyError extends IdentityError {
  override readonly name: string = 'InvalidKeyError'
  override readonly code: string = 'ERR_INVALID_KEY'
}

// ---- envelopes ---------------------------------------------------------------------------------------------

/** Bytes that are not a well-formed, canonical envelope (see spec/envelope.md). */
export class MalformedEnvelopeError extends IdentityError {
  override readonly name: string = 'MalformedEnvelopeError'
  override readonly code: string = 'ERR_MALFORMED_ENVELOPE'
}

/** An envelope larger than the receiver's bound. */
export class EnvelopeTooLargeError extends IdentityError {
  override readonly name: string = 'EnvelopeTooLargeError'
  override readonly code: string = 'ERR_ENVELOPE_TOO_LARGE'
}

/** The signature (or the batch Merkle proof) does not verify with the sender's key. */
export class BadSignatureError extends IdentityError {
  override readonly name: string = 'BadSignatureError'
  override readonly code: string = 'ERR_BAD_SIGNATURE'
}

/** The envelope's `exp` is in the past (beyond the clock-skew allowance). */
export class ExpiredEnvelopeError extends IdentityError {
  override readonly name: string = 'ExpiredEnvelopeError'
  override readonly code: string = 'ERR_EXPIRED_ENVELOPE'
}

/** The envelope's `iat` is in the future (beyond the clock-skew allowance). */
export class NotYetValidEnvelopeError extends IdentityError {
  override readonly name: string = 'NotYetValidEnvelopeError'
  override readonly code: string = 'ERR_NOT_YET_VALID_ENVELOPE'
}

/** The same sender's (id, nonce) was already accepted, or cannot be ruled out (replay cache saturated). */
export class ReplayedEnvelopeError extends IdentityError {
  override readonly name: string = 'ReplayedEnvelopeError'
  override readonly code: string = 'ERR_REPLAYED_ENVELOPE'
}

/** The envelope's `from` is not a resolvable did:key address. */
export class UnknownKeyError extends IdentityError {
  override readonly name: string = 'UnknownKeyError'
  override readonly code: string = 'ERR_UNKNOWN_KEY'
}

/**
 * An envelope of a sealed stream whose batch seal cannot vouch for it: the seal did not come in time, or some
 * members of its batch never arrived (a dropped stream). Not a forgery: the sender may send it again.
 */
export class UnsealedEnvelopeError extends IdentityError {
  override readonly name: string = 'UnsealedEnvelopeError'
  override readonly code: string = 'ERR_UNSEALED_ENVELOPE'
}

/** Asked to sign an envelope whose `from` is not the signing key's DID, or other bad signing input. */
export class InvalidEnvelopeInitError extends IdentityError {
  override readonly name: string = 'InvalidEnvelopeInitError'
  override readonly code: string = 'ERR_INVALID_ENVELOPE_INIT'
}

// ---- capabilities ------------------------------------------------------------------------------------------

/** A token that is not a well-formed capability JWT (see spec/capabilities.md). */
export class MalformedCapabilityError extends IdentityError {
  override readonly name: string = 'MalformedCapabilityError'
  override readonly code: string = 'ERR_MALFORMED_CAPABILITY'
}

/** A JWT signature in the chain does not verify against its issuer's did:key. */
export class CapabilitySignatureError extends IdentityError {
  override readonly name: string = 'CapabilitySignatureError'
  override readonly code: string = 'ERR_CAPABILITY_SIGNATURE'
}

/** A token in the chain has expired, or is not valid yet. */
export class CapabilityExpiredError extends IdentityError {
  override readonly name: string = 'CapabilityExpiredError'
  override readonly code: string = 'ERR_CAPABILITY_EXPIRED'
}

/** The chain's root issuer is not one of the roots this node trusts. */
export class UntrustedRootError extends IdentityError {
  override readonly name: string = 'UntrustedRootError'
  override readonly code: string = 'ERR_UNTRUSTED_ROOT'
}

/** A delegation grants an ability its parent does not cover (or loosens a limit). */
export class WideningDelegationError extends IdentityError {
  override readonly name: string = 'WideningDelegationError'
  override readonly code: string = 'ERR_WIDENING_DELEGATION'
}

/** A delegation expires after its parent. */
export class OutlivesParentError extends IdentityError {
  override readonly name: string = 'OutlivesParentError'
  override readonly code: string = 'ERR_OUTLIVES_PARENT'
}

/** The delegating key is not the parent token's audience (or a chain link's issuer is not its parent's audience). */
export class NotAudienceError extends IdentityError {
  override readonly name: string = 'NotAudienceError'
  override readonly code: string = 'ERR_NOT_AUDIENCE'
}

/** A token in the chain was revoked by an issuer in that chain. */
export class RevokedCapabilityError extends IdentityError {
  override readonly name: string = 'RevokedCapabilityError'
  override readonly code: string = 'ERR_REVOKED_CAPABILITY'
}

/** No presented token grants the requested ability to the requested audience. */
export class CapabilityDeniedError extends IdentityError {
  override readonly name: string = 'CapabilityDeniedError'
  override readonly code: string = 'ERR_CAPABILITY_DENIED'
}

/** A revocation record that is malformed, badly signed, or made by a key that is not an issuer in the chain. */
export class InvalidRevocationError extends IdentityError {
  override readonly name: string = 'InvalidRevocationError'
  override readonly code: string = 'ERR_INVALID_REVOCATION'
}

// ---- keystore ----------------------------------------------------------------------------------------------

/** The passphrase does not decrypt the keystore (or the file was altered). */
export class WrongPassphraseError extends IdentityError {
  override readonly name: string = 'WrongPassphraseError'
  override readonly code: string = 'ERR_WRONG_PASSPHRASE'
}

/** No passphrase available: NOIR_PASSPHRASE is unset and there is no terminal to prompt on. */
export class NoPassphraseError extends IdentityError {
  override readonly name: string = 'NoPassphraseError'
  override readonly code: string = 'ERR_NO_PASSPHRASE'
}

/** There is no key in this home yet (`noir id new`). */
export class NoIdentityError extends IdentityError {
  override readonly name: string = 'NoIdentityError'
  override readonly code: string = 'ERR_NO_IDENTITY'
}

/** Refused to overwrite an existing key. */
export class IdentityExistsError extends IdentityError {
  override readonly name: string = 'IdentityExistsError'
  override readonly code: string = 'ERR_IDENTITY_EXISTS'
}

/** The keystore file is not one this version can read. */
export class CorruptKeystoreError extends IdentityError {
  override readonly name: string = 'CorruptKeystoreError'
  override readonly code: string = 'ERR_CORRUPT_KEYSTORE'
}

// ---- encoding ----------------------------------------------------------------------------------------------

/** A value that has no RFC 8785 canonical JSON form (undefined, a function, NaN, a lone surrogate, a class instance, too deep). */
export class NonCanonicalValueError extends IdentityError {
  override readonly name: string = 'NonCanonicalValueError'
  override readonly code: string = 'ERR_NON_CANONICAL_VALUE'
}

// ---- sealed boxes ------------------------------------------------------------------------------------------

/** A sealed box (identity/sealed-box.ts) that does not open: tampered, another recipient's, or other associated data. */
export class SealedBoxError extends IdentityError {
  override readonly name: string = 'SealedBoxError'
  override readonly code: string = 'ERR_SEALED_BOX'
}
