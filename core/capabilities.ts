// The default CapabilityChecker: identity's CapabilityVerifier (did-jwt chains rooted in the node's
// trusted roots, revocations, its own cache of verified chains).
import { CapabilityVerifier, type RevocationStore } from '../identity/index.ts'
import type { CapabilityChecker, CapabilityRequest } from './capability-check.ts'

export class VerifierCapabilityChecker implements CapabilityChecker {
  readonly verifier: CapabilityVerifier

  constructor(verifier: CapabilityVerifier) {
    this.verifier = verifier
  }

  async check(tokens: readonly string[], request: CapabilityRequest): Promise<void> {
    await this.verifier.covers([...tokens], request)
  }
}

export interface CapabilityCheckerInit {
  trustedRoots: readonly string[]
  revocations?: RevocationStore
  now?: () => number
}

export function capabilityChecker(init: CapabilityCheckerInit): VerifierCapabilityChecker {
  return new VerifierCapabilityChecker(new CapabilityVerifier({
    trustedRoots: [...init.trustedRoots],
    ...(init.revocations ? { revocations: init.revocations } : {}),
    ...(init.now ? { now: init.now } : {}),
  }))
}
