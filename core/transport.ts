// The contract between the actor kernel and whatever carries envelopes between nodes.
// core/ never imports p2p/: the libp2p transport (p2p/) and the in-memory transport (core/) both
// implement this, and both pass the shared compliance suite in core/test/transport-compliance.ts.
//
// What crosses a Transport is always a signed envelope in its wire encoding (spec/envelope.md).
// The transport authenticates the remote *node* (libp2p: the Noise-authenticated peer id, which is the
// node's did:key); the kernel does everything else on the receive path: decode (bounded size), verify the
// signature, expiry, replay, bind the sender DID to `peerDid`, behavior lookup, capability check, mailbox.

/** One envelope as it arrived, still in wire bytes, with the node it came from. */
export interface InboundEnvelope {
  /** The envelope's wire encoding (spec/envelope.md); not yet verified. */
  readonly bytes: Uint8Array
  /** The DID of the authenticated remote node that sent these bytes on this connection. */
  readonly peerDid: string
}

export type InboundHandler = (inbound: InboundEnvelope) => void

/** Where `Transport.post` reports what became of an envelope (one shared object; `context` tells them apart). */
export interface SendSink<C> {
  handedOff(context: C): void
  failed(context: C, error: Error): void
}

export interface Transport {
  /** The DID of the node this transport speaks for. */
  readonly localDid: string
  /**
   * True when `peerDid` is proven cryptographically for every inbound envelope (libp2p: the Noise session is
   * bound to the peer's did:key). The kernel may then check envelope signatures concurrently with delivery
   * (spec/actors.md, "Signature checks"); otherwise it checks them before delivery.
   */
  readonly authenticatesPeers?: boolean
  /**
   * Sends one encoded envelope to the node `toNodeDid`. Resolves once the bytes are handed to the
   * connection (at-most-once: no retry after that point). Order is kept per (this node, toNodeDid).
   * Rejects with an error whose `name` is `UnreachableError` when no route to that node can be found
   * (core/errors.ts exports an `UnreachableError` class implementations may throw; the kernel checks the name).
   */
  send(toNodeDid: string, bytes: Uint8Array): Promise<void>
  /**
   * `send` without a promise, for the kernel's hot path (optional): the outcome goes to `sink` with `context`,
   * `sink.handedOff(context)` or `sink.failed(context, error)`, exactly once, never from within this call. A
   * promise and its reactions per envelope were a sizeable part of a sender's time and garbage.
   */
  post?<C>(toNodeDid: string, bytes: Uint8Array, sink: SendSink<C>, context: C): void
  /**
   * Drops every connection to `peerDid` (it broke the protocol: a signature that did not verify on an
   * authenticated session), but not before the peer could read what was handed over for it (the refusal
   * that tells it why). Optional; a transport without connections has nothing to drop.
   */
  disconnect?(peerDid: string, reason: Error): void
  /** Installs the one handler that receives every inbound envelope. Replaces any earlier handler. */
  onEnvelope(handler: InboundHandler): void
  /**
   * Optional: installs the one handler told when every connection to a peer has closed (it may have crashed:
   * what it had sent but not yet sealed is not a violation). Replaces any earlier handler.
   */
  onPeerGone?(handler: (peerDid: string) => void): void
  start(): Promise<void>
  stop(): Promise<void>
}
