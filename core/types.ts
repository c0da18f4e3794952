// Public types of the actor kernel shared by the ActorSystem, the SDK and the test kit.
import type { InspectionEvent } from 'xstate'

/** Options of a one-way message. */
export interface TellOptions {
  /** The sender's address; defaults to the node itself (its bare DID). Set by an actor's context. */
  from?: string
  /** Capability tokens (did-jwt JWTs) proving the sender may use the behavior. */
  proofs?: readonly string[]
  /** Lifetime of the remote envelope (ms); the receiver refuses it after that. */
  ttlMs?: number
  /**
   * The local sender is not trusted (code of a sandboxed workload relayed by the node): the message is
   * capability-checked like a remote one (its `proofs` must grant the behavior's ability, audience = this
   * node's DID) even under localPolicy 'trusted'. Public behaviors stay public. Remote receivers always check.
   */
  untrusted?: boolean
}

/** Options of a request/response message. */
export interface AskOptions extends TellOptions {
  /** How long to wait for the answer before failing with AskTimeoutError. Default: the system's `askTimeoutMs`. */
  timeoutMs?: number
}

/** A handle on an actor, local or remote: its address and the two ways to message it. */
export interface ActorRef {
  readonly address: string
  /** The actor path under its node's DID (`orchestrator`, `alloc/7f3a`). */
  readonly path: string
  /** Fire and forget. A local refusal throws its typed error at once; a remote one arrives as a `rejected` system event. */
  tell(behavior: string, body?: unknown, options?: TellOptions): void
  ask<TReply = unknown>(behavior: string, body?: unknown, options?: AskOptions): Promise<TReply>
  /** Messages waiting in the mailbox (0 for a remote or stopped actor). */
  readonly mailboxDepth: number
}

/** Why an actor ended, as given to watchers. */
export type TerminationReason =
  | { kind: 'stopped'; by: 'request' | 'parent' | 'system' | 'supervisor' }
  | { kind: 'done'; output: unknown }
  | { kind: 'crashed'; error: Error }
  | { kind: 'not-found' }

/** Everything the system reports on its event stream (tracing, dashboards, tests). */
export type SystemEvent =
  | { type: 'spawned'; address: string; definition: string }
  | { type: 'terminated'; address: string; reason: TerminationReason }
  | { type: 'crashed'; address: string; error: Error }
  | { type: 'restarted'; address: string; restarts: number }
  /** A supervisor gave up (restart intensity exceeded). At the root this stopped the whole tree. */
  | { type: 'escalated'; address: string; error: Error; root: boolean }
  /** A message refused after it was sent: a remote tell answered with an error, or a queued tell dropped. */
  | { type: 'rejected'; to: string; behavior: string; error: Error }
  /**
   * A peer broke the protocol on an authenticated session (an envelope whose signature failed the concurrent
   * check, after it was delivered): it was answered with the error and disconnected.
   */
  | { type: 'peer-violation'; peerDid: string; envelopeId: string; behavior: string; error: Error }
  /**
   * Envelopes of a sealed stream whose batch seal could not vouch for them (it never came within the seal
   * time-out, or members of the batch were lost with a dropped stream). With concurrent checks they were
   * already delivered on the strength of the authenticated session; with inline checks they were refused
   * (answered with UnsealedEnvelopeError). Not a forgery: nothing was found wrong, only nothing proven.
   */
  | { type: 'unsealed'; peerDid: string; envelopes: number; firstEnvelopeId: string | undefined; delivered: boolean; reason: string }
  /**
   * The signature thread failed (could not start, crashed or exited): signing seals and checking signatures
   * go on inline, on the main thread, which is safe but slower.
   */
  | { type: 'signature-thread-lost'; error: Error }
  /** An answer that matched no pending ask (late, after a time-out, or unknown). */
  | { type: 'unmatched-reply'; from: string; inReplyTo: string }
  /** XState's inspection stream for a hosted actor (only when the system was created with `inspect: true`). */
  | { type: 'inspect'; address: string; event: InspectionEvent }

export type SystemEventListener = (event: SystemEvent) => void

/**
 * What the kernel tells an observer (metrics), when one is given: kept to calls that cost nothing when absent.
 * The appliance binds it to its metrics registry; core knows nothing of the metrics library.
 */
export interface SystemObserver {
  /** An ask settled: `ms` from the call to its answer; outcome 'ok', 'error' (a typed refusal) or 'timeout'. */
  askSettled(behavior: string, ms: number, outcome: 'ok' | 'error' | 'timeout'): void
}

/**
 * Carries trace context with messages, when given (spec/observability.md, "Traces"): a message sent while a
 * trace is active is handled inside a span of that trace, on this node or another (the envelope's `trace`
 * field). Contexts are opaque to the kernel; the appliance binds this to OpenTelemetry.
 */
export interface MessageTracer {
  /** The active trace context, to travel with a message; undefined when there is none (nothing is carried). */
  capture(): unknown
  /** The W3C `traceparent` of a captured context, for an envelope (undefined: not sampled, nothing sent). */
  traceparent(captured: unknown): string | undefined
  /** A context from a received envelope's `traceparent` (the remote sender's span as the parent). */
  fromTraceparent(traceparent: string): unknown
  /** Runs the handling of one message inside a span of the captured context. */
  handle(captured: unknown, behavior: string, address: string, fn: () => void): void
}
