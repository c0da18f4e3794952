// The ActorSystem: hosts XState v5 machines as addressed actors on one node. It owns the registry of names,
// the mailboxes and the scheduler that feeds each actor one message at a time, the one routing path of tell,
// send and ask (an actor here, or the remote endpoint), actor lifecycles and snapshots. Its parts: the actor
// cell (actor-cell.ts), refs (actor-refs.ts), repliers (repliers.ts), supervision (supervision.ts) and, through
// core/remote.ts, the signed path to other nodes. spec/actors.md is the contract; comments here say why the
// code is shaped as it is.
import { createActor, type InspectionEvent } from 'xstate'
import { parseAddress, type NodeKey } from '../identity/index.ts'
import { ActorCell, type HostedActor, type Message } from './actor-cell.ts'
import { LocalActorRef, RemoteActorRef } from './actor-refs.ts'
import { XStateChildren, canHaveChildren, describeActors, type HostedActorNode } from './actor-tree.ts'
import { actorAddress, checkName } from './address.ts'
import type { CapabilityChecker } from './capability-check.ts'
import { capabilityChecker } from './capabilities.ts'
import { realClock, type Clock } from './clock.ts'
import {
  ActorCrashedError,
  ActorNotFoundError,
  ActorStoppedError,
  CapabilityDeniedError,
  InvalidDefinitionError,
  InvalidMessageError,
  MailboxFullError,
  NameTakenError,
  NoirError,
  NoTransportError,
  SnapshotMismatchError,
  SnapshotNotFoundError,
  SnapshotNotSavedError,
  SystemStoppedError,
  UnknownBehaviorError,
} from './errors.ts'
import { OrderedAdmission } from './ordered-admission.ts'
import type { RemoteEndpoint, RemoteEndpointFactory } from './remote-contract.ts'
import { signedRemote } from './remote.ts'
import { DeferredReply, HandOff, NO_CONTEXT, PendingAsk, type Replier } from './repliers.ts'
import { defaultSupervision, isActorLogic, type ActorDefinition, type NormalizedBehavior, type SupervisionSpec } from './sdk.ts'
import { toJsonValue, type SnapshotStore, type StoredSnapshot } from './snapshot-store.ts'
import type { Startable } from './startable.ts'
import { Supervisor, type SupervisorNode } from './supervision.ts'
import type { Transport } from './transport.ts'
import type { ActorRef, AskOptions, SystemEvent, SystemEventListener, SystemObserver, MessageTracer, TellOptions, TerminationReason } from './types.ts'

export type { Replier } from './repliers.ts'

/** How messages from this node's own actors are authorized (spec/actors.md, "Local trust"). */
export type LocalPolicy = 'trusted' | 'checked'

export interface ActorSystemInit {
  /** The node's key: its DID names every local actor and signs every envelope this node sends. */
  key: NodeKey
  /** Carries envelopes to other nodes. Without one, only local addresses work. */
  transport?: Transport
  /** Builds the remote endpoint over the transport (default: core/remote.ts `signedRemote()`). */
  remote?: RemoteEndpointFactory
  clock?: Clock
  snapshots?: SnapshotStore
  /** DIDs whose capability chains this node accepts. The node's own DID is always included. */
  trustedRoots?: readonly string[]
  /** Answers capability questions; default: identity's CapabilityVerifier over `trustedRoots` (core/capabilities.ts). */
  capabilities?: CapabilityChecker
  /** Default 'trusted': messages from this node's own actors skip the capability check. */
  localPolicy?: LocalPolicy
  /** Default time-out of `ask`, ms. Default 5000. */
  askTimeoutMs?: number
  /** Supervision of top-level actors. Default one-for-one, 3 restarts in 5 s. */
  rootSupervision?: Partial<SupervisionSpec>
  /** Surface XState's inspection events on the system event stream (costs a little per event). */
  inspect?: boolean
  /** Called when the root supervisor gives up (restart intensity exceeded at the top): the tree is stopped. */
  onEscalation?: (error: Error) => void
  /** Told of ask latencies (metrics); absent: nothing is measured. */
  observer?: SystemObserver
  /** Carries trace context with messages, local and remote (spec/observability.md); absent: nothing is traced. */
  tracer?: MessageTracer
}

export interface SpawnOptions {
  /** The actor's registered name (one path segment). */
  name: string
  /** The parent (its address or ref, on this node); default: a top-level actor under the root supervisor. */
  parent?: string | ActorRef
  /** Given to the definition's `input` (or straight to the machine). */
  input?: unknown
  /**
   * A persisted snapshot to continue from instead of starting from `input` (the caller keeps snapshots
   * itself; `restore` reads them from the system's SnapshotStore).
   */
  snapshot?: unknown
}

export interface RestoreOptions extends SpawnOptions {
  /** The snapshot key; default the actor's path. */
  key?: string
}

const NONE: unique symbol = Symbol('none')
/** Marks an address that belongs to another node. */
const REMOTE: unique symbol = Symbol('remote')

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value))
}

const SNAPSHOT_SPEC: NormalizedBehavior = Object.freeze({
  path: '/noir/snapshot',
  ability: '/noir/snapshot',
  public: false,
  parse: undefined,
  event: undefined,
  wantsContext: false,
  reply: undefined,
  deferred: false,
})

const TOMBSTONES = 10_000
/** How many messages one actor handles before the scheduler moves to the next ready actor. */
const FAIR_SHARE = 64
/** How many messages one scheduler turn handles before yielding to I/O (setImmediate). */
const TURN_BUDGET = 8192

export class ActorSystem implements Startable {
  readonly did: string
  readonly key: NodeKey
  readonly clock: Clock
  readonly trustedRoots: readonly string[]
  readonly localPolicy: LocalPolicy
  readonly snapshots: SnapshotStore | undefined
  readonly #prefix: string
  readonly #registry = new Map<string, ActorCell>()
  readonly #tombstones = new Map<string, string>()
  readonly #root: SupervisorNode
  readonly #ready: ActorCell[] = []
  #readyHead = 0
  #scheduled = false
  readonly #listeners = new Set<SystemEventListener>()
  readonly #inspect: boolean
  readonly #askTimeoutMs: number
  readonly #observer: SystemObserver | undefined
  readonly #tracer: MessageTracer | undefined
  readonly #capabilities: CapabilityChecker
  readonly #admission = new OrderedAdmission()
  readonly #pendingSaves = new Set<Promise<unknown>>()
  readonly #supervisor: Supervisor
  readonly #transport: Transport | undefined
  readonly #remote: RemoteEndpoint | undefined
  #state: 'running' | 'stopping' | 'stopped' = 'running'
  #started = false

  constructor(init: ActorSystemInit) {
    this.key = init.key
    this.did = init.key.did
    this.#prefix = `${this.did}/`
    this.clock = init.clock ?? realClock
    this.trustedRoots = [...new Set([this.did, ...(init.trustedRoots ?? [])])]
    this.localPolicy = init.localPolicy ?? 'trusted'
    this.snapshots = init.snapshots
    this.#inspect = init.inspect === true
    this.#askTimeoutMs = init.askTimeoutMs ?? 5000
    this.#observer = init.observer
    this.#tracer = init.tracer
    this.#capabilities = init.capabilities ?? capabilityChecker({ trustedRoots: this.trustedRoots, now: () => this.clock.now() })
    this.#supervisor = new Supervisor({
      now: () => this.clock.now(),
      emit: (event) => this.#emit(event),
      terminate: (cell, reason, failWith) => this.#terminate(cell, reason, failWith),
      halt: (cell) => this.#halt(cell),
      flush: (cell, error) => this.#flush(cell, error),
      boot: (cell) => this.#boot(cell, undefined),
      crash: (cell, error) => this.#crash(cell, error, undefined),
      onEscalation: init.onEscalation,
    })
    this.#root = { address: this.did, children: [], restartTimes: [], supervision: { ...defaultSupervision, ...init.rootSupervision }, isRoot: true }
    this.#transport = init.transport
    if (init.transport) {
      this.#remote = (init.remote ?? signedRemote())({
        key: this.key,
        clock: this.clock,
        transport: init.transport,
        deliver: (path, behavior, body, from, senderDid, proofs, reply, trace) => this.#deliverRemote(path, behavior, body, from, senderDid, proofs, reply, trace),
        readOnly: (path, behavior) => {
          const spec = this.#registry.get(path)?.definition.behaviors.get(behavior)
          return spec !== undefined && spec.event === undefined && !spec.deferred
        },
        emit: (event) => this.#emit(event),
      })
    }
  }

  // ---- lifecycle --------------------------------------------------------------------------------------------

  /** Starts the transport (if any). Local actors work before start. */
  async start(): Promise<void> {
    if (this.#state !== 'running') throw new SystemStoppedError(this.did)
    if (this.#started) return
    this.#started = true
    if (this.#transport && this.#remote) {
      this.#transport.onEnvelope((inbound) => this.#remote?.receive(inbound))
      this.#transport.onPeerGone?.((peerDid) => this.#remote?.peerGone?.(peerDid))
      await this.#transport.start()
    }
  }

  /**
   * Resolves once every remote envelope received so far has had its signature checked. Over an authenticating
   * transport signatures are checked concurrently with delivery (spec/actors.md, "Signature checks"): wait
   * for this before keeping a received message as evidence.
   */
  signaturesChecked(): Promise<void> {
    return this.#remote?.signaturesChecked?.() ?? Promise.resolve()
  }

  /** Stops every actor (children before parents, newest first), saves persistent snapshots, stops the transport. */
  async stop(): Promise<void> {
    if (this.#state !== 'running') return
    this.#state = 'stopping'
    for (const cell of [...this.#root.children].reverse()) this.#terminate(cell, { kind: 'stopped', by: 'system' })
    await Promise.allSettled([...this.#pendingSaves])
    this.#remote?.close(new SystemStoppedError(this.did))
    if (this.#transport && this.#started) await this.#transport.stop()
    this.#state = 'stopped'
  }

  get running(): boolean {
    return this.#state === 'running'
  }

  // ---- spawning, lookup, watching ---------------------------------------------------------------------------

  /** Starts an actor under a registered name. Throws NameTakenError, InvalidAddressError, or ActorCrashedError if it fails to start. */
  spawn(definition: ActorDefinition, options: SpawnOptions): ActorRef {
    return this.#spawn(definition, options, options.snapshot).ref
  }

  #spawn(definition: ActorDefinition, options: SpawnOptions, snapshot: unknown): ActorCell {
    if (this.#state !== 'running') throw new SystemStoppedError(this.did)
    const name = checkName(options.name)
    let parent: SupervisorNode = this.#root
    let path = name
    if (options.parent !== undefined) {
      const p = this.#localCell(options.parent)
      if (!(p instanceof ActorCell)) throw p
      parent = p
      path = `${p.path}/${name}`
    }
    if (this.#registry.has(path)) throw new NameTakenError(actorAddress(this.did, path))
    const cell = new ActorCell(this, path, name, definition, parent, options.input)
    this.#registry.set(path, cell)
    this.#tombstones.delete(path)
    parent.children.push(cell)
    try {
      this.#boot(cell, snapshot)
    } catch (err) {
      this.#terminate(cell, { kind: 'crashed', error: asError(err) })
      throw err instanceof ActorCrashedError ? err : new ActorCrashedError(cell.address, err)
    }
    this.#emit({ type: 'spawned', address: cell.address, definition: definition.name })
    return cell
  }

  /** The running actor at `path` (`counter`, `alloc/7f3a`) or full local address, if any. */
  lookup(pathOrAddress: string): ActorRef | undefined {
    const path = pathOrAddress.startsWith(this.#prefix) ? pathOrAddress.slice(this.#prefix.length) : pathOrAddress.replace(/^\//, '')
    return this.#registry.get(path)?.ref
  }

  /** A ref for any address, local or remote (a remote ref is not checked until used). */
  refFor(address: string): ActorRef {
    if (address.startsWith(this.#prefix)) {
      const cell = this.#registry.get(address.slice(this.#prefix.length))
      if (cell) return cell.ref
    }
    const { path } = parseAddress(address)
    return new RemoteActorRef(this, address, path.replace(/^\//, ''))
  }

  /** Paths of the running actors, in the order they were first spawned (a parent before its children). */
  actors(): string[] {
    return [...this.#registry.keys()]
  }

  /**
   * Calls `listener` once when the actor ends for good (stopped, done, or crashed and not restarted). A
   * restart is not an end: the address keeps working. A missing actor is reported at once as `not-found`.
   * Returns a function that cancels the watch.
   */
  watch(target: string | ActorRef, listener: (reason: TerminationReason) => void): () => void {
    const cell = this.#localCell(target)
    if (!(cell instanceof ActorCell) || cell.state !== 'running') {
      queueMicrotask(() => listener({ kind: 'not-found' }))
      return () => {}
    }
    const watchers = (cell.watchers ??= new Set())
    const once = (reason: TerminationReason): void => listener(reason)
    watchers.add(once)
    return () => watchers.delete(once)
  }

  /** Messages waiting in the actor's mailbox (0 when it does not run here). */
  mailboxDepth(target: string | ActorRef): number {
    const cell = this.#localCell(target)
    return cell instanceof ActorCell && cell.state === 'running' ? cell.mailbox.depth : 0
  }

  /** Counts for monitoring: running actors, messages waiting in all mailboxes, actors waiting to run. */
  stats(): { actors: number; queuedMessages: number; readyActors: number } {
    let queued = 0
    for (const cell of this.#registry.values()) queued += cell.mailbox.depth
    return { actors: this.#registry.size, queuedMessages: queued, readyActors: this.#ready.length - this.#readyHead }
  }

  /**
   * The live actor tree: every running actor under its supervisor, in start order, with its logic, state,
   * mailbox depth and restarts, and the XState children its machine invoked or spawned (core/actor-tree.ts).
   */
  actorTree(): HostedActorNode[] {
    return describeActors(this.#root.children)
  }

  /** The XState snapshot of a local actor (read-only view, for tests and tooling). */
  snapshotOf(target: string | ActorRef): unknown {
    const cell = this.#localCell(target)
    if (!(cell instanceof ActorCell)) throw cell
    return cell.actor?.getSnapshot()
  }

  /** Subscribes to the system event stream; returns the unsubscribe function. */
  subscribe(listener: SystemEventListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Stops an actor and its children; resolves once its snapshot (if persistent) is saved. */
  async stopActor(target: string | ActorRef): Promise<void> {
    const cell = this.#localCell(target)
    if (!(cell instanceof ActorCell)) throw cell === REMOTE ? new ActorNotFoundError(typeof target === 'string' ? target : target.address) : cell
    this.#terminate(cell, { kind: 'stopped', by: 'request' })
    await Promise.allSettled([...this.#pendingSaves])
  }

  // ---- messaging -----------------------------------------------------------------------------------------------

  /**
   * Fire and forget. A refusal known here (missing or stopped actor, unknown behavior, missing
   * capability, full mailbox) throws its typed error at once; a remote refusal arrives later as a
   * `rejected` system event. No promise is allocated on the local path.
   */
  tell(to: string | ActorRef, behavior: string, body?: unknown, options?: TellOptions): void {
    const refusal = this.#route(to, behavior, body, options, undefined)
    if (refusal !== undefined) throw refusal
  }

  /**
   * A tell whose hand-off can be awaited: resolves once the message is queued in the local actor's mailbox
   * (after its capability check, if one is needed) or handed to the transport for a remote actor; rejects
   * with the refusal known by then (ActorNotFoundError, CapabilityDeniedError, MailboxFullError, ... locally;
   * UnreachableError, MessageTooLargeError, InvalidMessageError for a remote address). A refusal that comes
   * later (the receiving node's error answer, a crash while handling) is a `rejected` system event, as for `tell`.
   */
  send(to: string | ActorRef, behavior: string, body?: unknown, options?: TellOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const address = typeof to === 'string' ? to : to.address
      const handOff = new HandOff(resolve, reject, (error) => this.#emit({ type: 'rejected', to: address, behavior, error }))
      const refusal = this.#route(to, behavior, body, options, handOff)
      if (refusal !== undefined) handOff.fail(refusal)
    })
  }

  /**
   * Request/response. Rejects with the receiver's typed error (same `name` and class), with
   * ActorNotFoundError / ActorStoppedError / ActorCrashedError at once when there is no live actor to
   * answer, and with AskTimeoutError after `timeoutMs`.
   */
  ask<TReply = unknown>(to: string | ActorRef, behavior: string, body?: unknown, options?: AskOptions): Promise<TReply> {
    const timeoutMs = options?.timeoutMs ?? this.#askTimeoutMs
    const observer = this.#observer
    return new Promise<TReply>((resolve, reject) => {
      let ok = resolve as (v: unknown) => void
      let fail: (e: Error) => void = reject
      if (observer !== undefined) {
        const t0 = performance.now()
        ok = (v) => {
          observer.askSettled(behavior, performance.now() - t0, 'ok')
          resolve(v as TReply)
        }
        fail = (e: Error) => {
          observer.askSettled(behavior, performance.now() - t0, e.name === 'AskTimeoutError' ? 'timeout' : 'error')
          reject(e)
        }
      }
      const pending = new PendingAsk(ok, fail, this.clock)
      const refusal = this.#route(to, behavior, body, options, pending)
      if (refusal !== undefined) return pending.fail(refusal)
      pending.expireAfter(typeof to === 'string' ? to : to.address, behavior, timeoutMs)
    })
  }

  // ---- persistence ---------------------------------------------------------------------------------------------

  /**
   * Saves the actor's persisted snapshot to the SnapshotStore under its path and returns the record. The
   * snapshot is taken in mailbox order: after every message queued before this call was handled.
   */
  async saveSnapshot(target: string | ActorRef): Promise<StoredSnapshot> {
    const cell = this.#localCell(target)
    if (!(cell instanceof ActorCell)) throw cell === REMOTE ? new ActorNotFoundError(typeof target === 'string' ? target : target.address) : cell
    const store = this.#store()
    const record = await new Promise<StoredSnapshot>((resolve, reject) => {
      const reply: Replier = { expectsReply: true, ok: (r) => resolve(r as StoredSnapshot), fail: reject }
      const take = (c: ActorCell): void => {
        try {
          reply.ok(this.#record(c))
        } catch (err) {
          reply.fail(asError(err))
        }
      }
      if (cell.mailbox.depth === 0) return take(cell)
      // Kernel work is never refused for a full mailbox: it rides behind the messages already queued.
      cell.mailbox.force({ spec: SNAPSHOT_SPEC, body: undefined, from: this.did, reply, control: take, trace: undefined })
      if (!cell.queued) this.#schedule(cell)
    })
    await store.save(cell.path, record)
    return record
  }

  /** Spawns an actor from the snapshot stored under `key` (default: the new actor's path); it continues from there. */
  async restore(definition: ActorDefinition, options: RestoreOptions): Promise<ActorRef> {
    const store = this.#store()
    const parentPath = options.parent === undefined ? '' : (() => {
      const p = this.#localCell(options.parent)
      if (!(p instanceof ActorCell)) throw p
      return `${p.path}/`
    })()
    const key = options.key ?? `${parentPath}${options.name}`
    const record = await store.load(key)
    if (!record) throw new SnapshotNotFoundError(key)
    if (record.v !== 1) throw new SnapshotMismatchError(key, `unknown record version ${String(record.v)}`)
    if (record.definition !== definition.name) throw new SnapshotMismatchError(key, `it belongs to ${record.definition}, not ${definition.name}`)
    return this.#spawn(definition, options, record.snapshot).ref
  }

  #store(): SnapshotStore {
    if (!this.snapshots) throw new SnapshotNotFoundError('(this ActorSystem has no SnapshotStore)')
    return this.snapshots
  }

  #record(cell: ActorCell): StoredSnapshot {
    if (!cell.actor) throw new ActorStoppedError(cell.address)
    let snapshot: unknown
    try {
      snapshot = toJsonValue(cell.actor.getPersistedSnapshot())
    } catch (err) {
      throw new SnapshotNotSavedError(cell.path, `not JSON-serializable: ${asError(err).message}`)
    }
    return { v: 1, definition: cell.definition.name, address: cell.address, snapshot, savedAt: this.clock.now() }
  }

  // ---- internals: routing ------------------------------------------------------------------------------------

  /**
   * The one routing decision of tell, send and ask: an actor of this node gets the message in its mailbox
   * (after its admission), an address on another node goes to the remote endpoint. Returns the refusal known
   * at once; `reply` hears of anything later.
   */
  #route(to: string | ActorRef, behavior: string, body: unknown, options: TellOptions | undefined, reply: Replier | undefined): Error | undefined {
    const cell = this.#localCell(to)
    if (cell instanceof ActorCell) return this.#deliverLocal(cell, behavior, body, options, reply)
    if (cell !== REMOTE) return cell
    if (this.#state !== 'running') return new SystemStoppedError(this.did)
    const address = typeof to === 'string' ? to : to.address
    const remote = this.#remote
    if (remote === undefined) return new NoTransportError(address)
    let id: string
    try {
      const tracer = this.#tracer
      const captured = tracer?.capture()
      id = remote.send(address, behavior, body, options?.from ?? this.did, options, reply, captured === undefined ? undefined : tracer!.traceparent(captured))
    } catch (err) {
      return asError(err)
    }
    // an ask that times out is forgotten at the endpoint: its late answer is then reported as unmatched
    if (reply instanceof PendingAsk) reply.forgetOnExpiry(() => remote.forget(id))
    return undefined
  }

  #localCell(to: string | ActorRef): ActorCell | Error | typeof REMOTE {
    if (typeof to !== 'string') {
      if (to instanceof LocalActorRef && to.system === this) return to.cell.state === 'running' ? to.cell : new ActorStoppedError(to.cell.address)
      to = to.address
    }
    if (to.startsWith(this.#prefix)) {
      const path = to.slice(this.#prefix.length)
      const cell = this.#registry.get(path)
      if (cell !== undefined) return cell
      const why = this.#tombstones.get(path)
      return why !== undefined ? new ActorStoppedError(to, why) : new ActorNotFoundError(to)
    }
    if (to === this.did) return new ActorNotFoundError(to)
    try {
      const { did } = parseAddress(to)
      if (did === this.did) return new ActorNotFoundError(to)
    } catch (err) {
      return asError(err)
    }
    return REMOTE
  }

  /** Local delivery; returns the refusal instead of throwing so `tell` and `ask` each report it their way. */
  #deliverLocal(cell: ActorCell, behavior: string, body: unknown, options: TellOptions | undefined, reply: Replier | undefined): Error | undefined {
    if (cell.state !== 'running') return new ActorStoppedError(cell.address)
    const spec = cell.definition.behaviors.get(behavior)
    if (spec === undefined) return new UnknownBehaviorError(cell.address, behavior)
    const from = options?.from ?? this.did
    const trace = this.#tracer?.capture()
    // An untrusted local sender (a sandboxed workload's message relayed by the node) is checked whatever the policy.
    if (spec.public || (this.localPolicy === 'trusted' && options?.untrusted !== true)) {
      if (!this.#admission.busy(from)) return this.#enqueue(cell, spec, body, from, reply, trace)
      this.#admission.admit(from, undefined, () => this.#afterAdmission(cell, spec, body, from, reply, undefined, trace))
      return undefined
    }
    const check = this.#checkCapability(options?.proofs, this.did, spec)
    this.#admission.admit(from, check, (err) => this.#afterAdmission(cell, spec, body, from, reply, err, trace))
    return undefined
  }

  #afterAdmission(cell: ActorCell, spec: NormalizedBehavior, body: unknown, from: string, reply: Replier | undefined, err: Error | undefined, trace: unknown): void {
    const refusal = err ?? (cell.state !== 'running' ? new ActorStoppedError(cell.address) : this.#enqueue(cell, spec, body, from, reply, trace))
    if (refusal === undefined) return
    if (reply) reply.fail(refusal)
    else this.#emit({ type: 'rejected', to: cell.address, behavior: spec.path, error: refusal })
  }

  #checkCapability(proofs: readonly string[] | undefined, audience: string, spec: NormalizedBehavior): Promise<void> {
    if (!proofs || proofs.length === 0) {
      return Promise.reject(new CapabilityDeniedError(`${spec.path} requires a capability for ${spec.ability}; none was presented`))
    }
    return this.#capabilities.check(proofs, { audience, ability: spec.ability })
  }

  /** Entry point for messages that arrived over the transport, already verified by the remote endpoint. */
  #deliverRemote(path: string, behavior: string, body: unknown, from: string, senderDid: string, proofs: readonly string[] | undefined, reply: Replier, traceparent: string | undefined): void {
    const cell = this.#registry.get(path)
    if (cell === undefined || cell.state !== 'running') {
      const address = actorAddress(this.did, path)
      const why = this.#tombstones.get(path)
      reply.fail(why !== undefined ? new ActorStoppedError(address, why) : new ActorNotFoundError(address))
      return
    }
    const spec = cell.definition.behaviors.get(behavior)
    if (spec === undefined) return reply.fail(new UnknownBehaviorError(cell.address, behavior))
    // the remote sender's span is the parent of this node's handling (an untraced node ignores it)
    const trace = traceparent !== undefined && this.#tracer !== undefined ? this.#tracer.fromTraceparent(traceparent) : undefined
    // Messages from another node are always capability-checked (unless public), whatever the local policy.
    if (spec.public && !this.#admission.busy(senderDid)) return this.#afterAdmission(cell, spec, body, from, reply, undefined, trace)
    const check = spec.public ? undefined : this.#checkCapability(proofs, senderDid, spec)
    this.#admission.admit(senderDid, check, (err) => this.#afterAdmission(cell, spec, body, from, reply, err, trace))
  }

  #enqueue(cell: ActorCell, spec: NormalizedBehavior, body: unknown, from: string, reply: Replier | undefined, trace: unknown): Error | undefined {
    if (spec.parse !== undefined) {
      // Bodies are checked on arrival, so a bad one is refused at once (a tell throws), not after queueing.
      try {
        body = spec.parse(body)
      } catch (err) {
        return err instanceof NoirError ? err : new InvalidMessageError(spec.path, asError(err).message)
      }
    }
    if (!cell.mailbox.offer({ spec, body, from, reply, control: undefined, trace })) return new MailboxFullError(cell.address, cell.mailbox.capacity)
    if (!cell.queued) this.#schedule(cell)
    reply?.handedOff?.()
    return undefined
  }

  // ---- internals: the scheduler ----------------------------------------------------------------------------------

  #schedule(cell: ActorCell): void {
    cell.queued = true
    this.#ready.push(cell)
    if (!this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(this.#drain)
    }
  }

  // One scheduler for the whole system: actors with mail are queued once; each gets a fair share per pass.
  #drain = (): void => {
    let budget = TURN_BUDGET
    while (this.#readyHead < this.#ready.length) {
      const cell = this.#ready[this.#readyHead]!
      this.#ready[this.#readyHead++] = undefined as unknown as ActorCell
      cell.queued = false
      let n = 0
      while (n < FAIR_SHARE && cell.state === 'running') {
        const msg = cell.mailbox.shift()
        if (msg === undefined) break
        if (msg.trace === undefined) this.#handle(cell, msg)
        else this.#handleTraced(cell, msg)
        n++
      }
      budget -= n
      if (cell.state === 'running' && cell.mailbox.depth > 0 && !cell.queued) {
        cell.queued = true
        this.#ready.push(cell)
      }
      if (budget <= 0 && this.#readyHead < this.#ready.length) {
        this.#compactReady()
        setImmediate(this.#drain)
        return
      }
    }
    this.#ready.length = 0
    this.#readyHead = 0
    this.#scheduled = false
  }

  #compactReady(): void {
    this.#ready.splice(0, this.#readyHead)
    this.#readyHead = 0
  }

  // ---- internals: handling one message ----------------------------------------------------------------------------

  /** A message sent within a trace is handled inside a span of it (the tracer's). */
  #handleTraced(cell: ActorCell, msg: Message): void {
    const tracer = this.#tracer
    if (tracer === undefined) return this.#handle(cell, msg)
    tracer.handle(msg.trace, msg.spec.path, cell.address, () => this.#handle(cell, msg))
  }

  #handle(cell: ActorCell, msg: Message): void {
    const actor = cell.actor
    if (actor === undefined) return msg.reply?.fail(new ActorStoppedError(cell.address))
    if (msg.control !== undefined) return msg.control(cell)
    cell.handled++
    const spec = msg.spec
    const body = msg.body
    let crash: unknown = NONE
    let deferred: DeferredReply | undefined
    if (spec.event !== undefined) {
      cell.processing = true
      try {
        if (spec.wantsContext) deferred = new DeferredReply(cell, msg)
        const event = spec.event(body, deferred ?? NO_CONTEXT)
        actor.send(event as never)
      } catch (err) {
        // A typed error thrown while turning the message into an event refuses the message, not the actor.
        if (err instanceof NoirError) {
          cell.processing = false
          return this.#refuse(cell, msg, err)
        }
        crash = err
      }
      cell.processing = false
    }
    const snapshot = actor.getSnapshot()
    if (crash === NONE && snapshot.status === 'error') crash = snapshot.error
    if (crash !== NONE) return this.#crash(cell, asError(crash), msg)
    const reply = msg.reply
    if (reply !== undefined && reply.expectsReply) {
      if (spec.deferred) {
        if (deferred !== undefined && !deferred.answered) (cell.deferred ??= new Set()).add(deferred)
      } else if (deferred !== undefined && deferred.answered) {
        // answered from inside the machine already
      } else if (spec.reply !== undefined) {
        let value: unknown
        try {
          value = spec.reply(snapshot, body)
        } catch (err) {
          if (err instanceof NoirError) reply.fail(err)
          else this.#crash(cell, asError(err), msg)
          return
        }
        reply.ok(value)
      } else {
        reply.ok(undefined)
      }
    }
    if (snapshot.status === 'done' && cell.actor === actor) this.#terminate(cell, { kind: 'done', output: snapshot.output })
  }

  #refuse(cell: ActorCell, msg: Message, error: Error): void {
    if (msg.reply) msg.reply.fail(error)
    else this.#emit({ type: 'rejected', to: cell.address, behavior: msg.spec.path, error })
  }

  // ---- internals: starting and stopping an actor instance ------------------------------------------------------------

  #boot(cell: ActorCell, snapshot: unknown): void {
    const def = cell.definition
    const ctx = cell.context
    const logic = typeof def.logic === 'function' ? def.logic(ctx) : def.logic
    if (!isActorLogic(logic)) throw new InvalidDefinitionError(`${def.name}: its logic factory returned something that is not XState actor logic`)
    const input = def.input !== undefined ? def.input(cell.input, ctx) : cell.input
    // XState's inspection keeps the actor tree's children current, for logic that can have children only
    // (core/actor-tree.ts says why); `inspect: true` surfaces every inspection event on the event stream
    const children = canHaveChildren(logic) ? new XStateChildren() : undefined
    cell.xstate = children
    const inspect = this.#inspect
      ? (event: InspectionEvent) => {
        children?.observe(event)
        this.#emit({ type: 'inspect', address: cell.address, event })
      }
      : children?.observe
    const actor = createActor(logic, {
      id: cell.path,
      ...(snapshot !== undefined ? { snapshot: snapshot as never } : { input }),
      ...(inspect ? { inspect } : {}),
    })
    actor.subscribe({
      error: (err) => this.#onAsyncError(cell, actor, err),
      complete: () => this.#onComplete(cell, actor),
    })
    cell.actor = actor
    cell.processing = true
    try {
      actor.start()
    } finally {
      cell.processing = false
    }
    const snap = actor.getSnapshot()
    if (snap.status === 'error') {
      cell.actor = undefined
      throw new ActorCrashedError(cell.address, snap.error)
    }
    for (const child of def.children) {
      this.#spawn(child.actor, { name: child.name, parent: cell.ref, input: child.input }, undefined)
    }
  }

  /** Stops the running XState instance without running completion logic for it. */
  #halt(cell: ActorCell): void {
    const actor = cell.actor
    cell.actor = undefined
    if (actor === undefined) return
    try {
      actor.stop()
    } catch {
      // a machine whose exit actions throw is stopping anyway
    }
  }

  // An error outside message handling (an invoked promise rejected with no onError, a delayed action threw).
  #onAsyncError(cell: ActorCell, actor: HostedActor, err: unknown): void {
    if (cell.processing || cell.actor !== actor || cell.state !== 'running') return
    queueMicrotask(() => {
      if (cell.actor === actor && cell.state === 'running') this.#crash(cell, asError(err), undefined)
    })
  }

  #onComplete(cell: ActorCell, actor: HostedActor): void {
    if (cell.processing || cell.actor !== actor || cell.state !== 'running') return
    const snap = actor.getSnapshot()
    if (snap.status === 'done') queueMicrotask(() => {
      if (cell.actor === actor && cell.state === 'running') this.#terminate(cell, { kind: 'done', output: snap.output })
    })
  }

  /** Fails everything waiting on this instance: queued messages and deferred answers. */
  #flush(cell: ActorCell, error: Error): void {
    for (const msg of cell.mailbox.drain()) this.#refuse(cell, msg, error)
    if (cell.deferred) {
      const pending = [...cell.deferred]
      cell.deferred = undefined
      for (const d of pending) d.fail(error)
    }
  }

  // ---- internals: crashes (core/supervision.ts decides what follows) -------------------------------------------

  #crash(cell: ActorCell, error: Error, msg: Message | undefined): void {
    if (cell.state !== 'running') return
    const crashed = new ActorCrashedError(cell.address, error)
    this.#emit({ type: 'crashed', address: cell.address, error })
    if (msg) this.#refuse(cell, msg, crashed)
    this.#supervisor.childCrashed(cell, error, crashed)
  }

  /** Ends an actor for good: children first, snapshot if persistent, pending work failed, name released, watchers told. */
  #terminate(cell: ActorCell, reason: TerminationReason, failWith?: Error): void {
    if (cell.state !== 'running') return
    cell.state = 'stopped'
    for (const child of [...cell.children].reverse()) this.#terminate(child, { kind: 'stopped', by: 'parent' })
    if (cell.definition.persist && this.snapshots && cell.actor && reason.kind !== 'crashed') {
      try {
        const record = this.#record(cell)
        const save = this.snapshots.save(cell.path, record).catch((err: unknown) => {
          this.#emit({ type: 'crashed', address: cell.address, error: new SnapshotNotSavedError(cell.path, `saving on stop failed: ${asError(err).message}`) })
        })
        this.#pendingSaves.add(save)
        void save.finally(() => this.#pendingSaves.delete(save))
      } catch (err) {
        this.#emit({ type: 'crashed', address: cell.address, error: asError(err) })
      }
    }
    this.#halt(cell)
    const why = reason.kind === 'stopped' ? `stopped by ${reason.by}` : reason.kind
    this.#flush(cell, failWith ?? new ActorStoppedError(cell.address, why))
    if (this.#registry.get(cell.path) === cell) this.#registry.delete(cell.path)
    this.#tombstones.set(cell.path, why)
    if (this.#tombstones.size > TOMBSTONES) this.#tombstones.delete(this.#tombstones.keys().next().value as string)
    const siblings = cell.parent.children
    const i = siblings.indexOf(cell)
    if (i >= 0) siblings.splice(i, 1)
    if (cell.watchers) {
      const watchers = [...cell.watchers]
      cell.watchers = undefined
      for (const w of watchers) {
        try {
          w(reason)
        } catch {
          // a watcher's failure is its own
        }
      }
    }
    this.#emit({ type: 'terminated', address: cell.address, reason })
  }

  #emit(event: SystemEvent): void {
    if (this.#listeners.size === 0) return
    for (const l of this.#listeners) {
      try {
        l(event)
      } catch {
        // listeners must not break the kernel
      }
    }
  }
}
