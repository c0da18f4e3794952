// A signed bid's signature verified on the signature thread (spec/orchestration.md, "Bids verified on the
// signature thread"): the same bytes and key as verifyBidSignature (actors/bidding/messages.ts), handed to
// identity/signature-worker.ts verifyDetached; the answer comes back as verifyBidSignature's error type.
import { BID_TAG, fromB64u, signingBytes } from '../contracts/signed.ts'
import { InvalidSignatureError } from '../errors.ts'
import type { CheckRoute, SignatureWorker } from '../../identity/signature-worker.ts'
import type { BidBody } from './messages.ts'

/**
 * Verifies `sig` as the signature of the node `body` names over `body`, on `worker`'s thread (inline when it
 * has none). `done` runs exactly once: undefined when it verifies, else an InvalidSignatureError. `urgent`: as
 * SignatureWorker.verifyDetached's (false for a pipelined caller that keeps the thread busy). Returns where it
 * went: 'checked' (verified here, `done` already ran) or 'queued' (on the thread).
 */
export function verifyBidOnWorker<C>(worker: SignatureWorker<C>, body: BidBody, sig: unknown, done: (error: InvalidSignatureError | undefined) => void, urgent = true): CheckRoute {
  if (typeof sig !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(sig)) {
    done(new InvalidSignatureError('bid: signature missing or not 64 bytes of base64url'))
    return 'checked'
  }
  return worker.verifyDetached(body.node, signingBytes(BID_TAG, body), fromB64u(sig), `bid ${body.id}`, (err) => {
    done(err === undefined ? undefined : new InvalidSignatureError(`bid: ${err.message}`))
  }, urgent)
}
