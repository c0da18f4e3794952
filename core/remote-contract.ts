// The seam between the ActorSystem and its signed remote path (core/remote/endpoint.ts implements it). Kept apart
// so the system's hot local path does not depend on envelope code.
import type { NodeKey } from '../identity/index.ts'
import type { Replier } from './repliers.ts'
import type { Clock } from './clock.ts'
import type { Transport, InboundEnvelope } from './transport.ts'
import type { SystemEvent, TellOptions } from './types.ts'

/** How long an outgoing sealed-stream batch stays open by default (spec/actors.md, "Sealed streams"). */
export const DEFAULT_SEAL_WINDOW_MS = 25

/** What the system gives its remote endpoint. */
export interface RemoteEndpointDeps {
  /** The node's key: signs what it sends (and seals), and names it (`key.did`). */
  key: NodeKey
  /** The system's clock (envelope times, expiry, seal time-outs). */
  clock: Clock
  transport: Transport
  /** Hands a verified inbound message to the actor at `path`; refusals go to `reply.fail`. */
  deliver(path: string, behavior: string, body: unknown, from: string, senderDid: string, proofs: readonly string[] | undefined, reply: Replier, trace: string | undefined): void
  /**
   * The behavior at `path` only reads its actor (it has no event: answered from the snapshot), so it may run
   * before the message's signature check is done (spec/actors.md, "Signature checks"). False when unknown.
   */
  readOnly(path: string, behavior: string): boolean
  emit(event: SystemEvent): void
}

export interface RemoteEndpoint {
  /**
   * Signs and sends a message to an actor on another node; `reply` (for an ask) gets the answer or the
   * error. `trace`: the W3C traceparent the envelope carries (spec/observability.md). Returns the envelope id.
   */
  send(to: string, behavior: string, body: unknown, from: string, options: TellOptions | undefined, reply: Replier | undefined, trace?: string): string
  /** Forgets a pending ask (timed out): a late answer becomes an `unmatched-reply` event. */
  forget(id: string): void
  /** Runs one inbound envelope through the receive pipeline. */
  receive(inbound: InboundEnvelope): void
  /** Every connection to `peerDid` closed: its open sealed batches may never be sealed (it may have crashed). */
  peerGone?(peerDid: string): void
  /** Resolves once every envelope received so far has had its signature checked (concurrent checks). */
  signaturesChecked?(): Promise<void>
  /** Fails every pending ask with `error` (the system is stopping). */
  close(error: Error): void
}

export type RemoteEndpointFactory = (deps: RemoteEndpointDeps) => RemoteEndpoint
