// The kernel's view of capability checking: one question, "may `audience` use `ability` with these
// tokens?". core/capabilities.ts answers it with identity's CapabilityVerifier; tests may pass their own.

export interface CapabilityRequest {
  /** The DID the tokens must be granted to (the sender). */
  audience: string
  /** The ability the behavior requires, e.g. `/counter/increment`. */
  ability: string
}

export interface CapabilityChecker {
  /** Resolves when the tokens cover the request; rejects with CapabilityDeniedError otherwise. */
  check(tokens: readonly string[], request: CapabilityRequest): Promise<void>
}
