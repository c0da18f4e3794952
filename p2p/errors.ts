// Typed errors of the mesh layer. Each class has a stable `name` and `code`; callers branch on those,
// never on message text.
import type { PeerId } from '@libp2p/interface'
import { UnreachableError } from '../core/errors.ts'
import { didFromPeerId } from '../identity/did-key.ts'

export class P2PError extends Error {
  override readonly name: string = 'P2PError'
  readonly code: string = 'ERR_P2P'
}

/** A frame on /noir/actor/1.0.0 announced a length above the frame size limit. */
export class FrameTooLargeError extends P2PError {
  override readonly name = 'FrameTooLargeError'
  override readonly code = 'ERR_FRAME_TOO_LARGE'
}

/** A frame could not be parsed: bad length prefix, zero length, or an unknown frame kind. */
export class MalformedFrameError extends P2PError {
  override readonly name = 'MalformedFrameError'
  override readonly code = 'ERR_MALFORMED_FRAME'
}

/** The stream ended (or stalled) in the middle of a frame. */
export class TruncatedFrameError extends P2PError {
  override readonly name = 'TruncatedFrameError'
  override readonly code = 'ERR_TRUNCATED_FRAME'
}

/** The remote peer's identity is not an Ed25519 key, so it has no did:key: it cannot be a NoirLedger node. */
export class UnsupportedPeerKeyError extends P2PError {
  override readonly name = 'UnsupportedPeerKeyError'
  override readonly code = 'ERR_UNSUPPORTED_PEER_KEY'
}

/**
 * No route to a node: unknown peer, no addresses, DHT lookup failed, or every dial failed. This is core's class
 * (`new UnreachableError(nodeDid, why)`, name 'UnreachableError', code 'ERR_UNREACHABLE'), so the kernel and
 * every caller see one class whichever layer found the node unreachable.
 */
export { UnreachableError }

/** UnreachableError for a peer: named by its did:key when it has one, else by its peer id. */
export function unreachablePeer(peer: PeerId, why: string): UnreachableError {
  let name: string
  try {
    name = didFromPeerId(peer)
  } catch {
    name = peer.toString()
  }
  return new UnreachableError(name, why)
}

/** An outbound envelope is larger than the frame size limit; it was not sent. */
export class MessageTooLargeError extends P2PError {
  override readonly name = 'MessageTooLargeError'
  override readonly code = 'ERR_MESSAGE_TOO_LARGE'
}

/** The transport (or host) is not started, or is stopping. */
export class NotStartedError extends P2PError {
  override readonly name = 'NotStartedError'
  override readonly code = 'ERR_NOT_STARTED'
}

/** A string given as a multiaddr, peer id or DID could not be parsed. */
export class InvalidPeerAddressError extends P2PError {
  override readonly name = 'InvalidPeerAddressError'
  override readonly code = 'ERR_INVALID_PEER_ADDRESS'
}

/** A pubsub message failed validation; `reason` says which check. */
export class PubsubMessageRejectedError extends P2PError {
  override readonly name = 'PubsubMessageRejectedError'
  override readonly code = 'ERR_PUBSUB_REJECTED'
  readonly reason: 'malformed' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'rate-limited' | 'topic-mismatch' | 'too-large'
  constructor(reason: PubsubMessageRejectedError['reason'], message: string) {
    super(message)
    this.reason = reason
  }
}

/** A topic name outside the allowed alphabet / length. */
export class InvalidTopicError extends P2PError {
  override readonly name = 'InvalidTopicError'
  override readonly code = 'ERR_INVALID_TOPIC'
}

/** A neighbour sent far more pubsub messages than its budget (p2p/pubsub.ts FLOOD_HANGUP): its connections are aborted. */
export class PeerFloodError extends P2PError {
  override readonly name = 'PeerFloodError'
  override readonly code = 'ERR_PEER_FLOOD'
}
