// Asks this node sent to other nodes that wait for their answer (spec/actors.md, "Remote messages"): an answer
// settles its ask only when it comes from the node that was asked. The time-out is the ActorSystem's (one
// for local and remote asks): when it fires the ask is forgotten here, and its late answer is reported as an
// `unmatched-reply` event.
import type { Envelope, JsonValue } from '../../identity/index.ts'
import { UnexpectedReplyError } from '../errors.ts'
import type { Replier } from '../repliers.ts'
import type { SystemEvent } from '../types.ts'
import { fromWireError, isWireError } from '../wire-error.ts'

export interface RemoteAsk {
  reply: Replier
  /** The node asked: only it may answer. */
  toDid: string
  /** Sealed streams: the batch the ask went out in, and `${toDid} ${behavior}` (to learn read-only behaviors). */
  batch?: number
  key?: string
}

type AnswerBody = Partial<{ ok: boolean; value: JsonValue; error: unknown }> | null

export class PendingAsks {
  readonly #asks = new Map<string, RemoteAsk>()
  readonly #emit: (event: SystemEvent) => void

  constructor(emit: (event: SystemEvent) => void) {
    this.#emit = emit
  }

  /** Waits for the answer to envelope `id`, sent to node `toDid`. */
  add(id: string, reply: Replier, toDid: string): void {
    this.#asks.set(id, { reply, toDid })
  }

  get(id: string): RemoteAsk | undefined {
    return this.#asks.get(id)
  }

  /** Drops a pending ask (it timed out, was given up, or could not be sent). */
  forget(id: string): void {
    this.#asks.delete(id)
  }

  /**
   * The ask `env` answers, no longer pending; undefined when it answers no ask of ours from its sender (a
   * refused tell, a late answer, or noise), which is reported as a `rejected` or `unmatched-reply` event.
   */
  take(env: Envelope, senderDid: string): RemoteAsk | undefined {
    const id = env.inReplyTo
    const ask = id === undefined ? undefined : this.#asks.get(id)
    if (id === undefined || ask === undefined || ask.toDid !== senderDid) {
      const body = env.body as AnswerBody
      if (body && isWireError(body.error) && id !== undefined) {
        this.#emit({ type: 'rejected', to: env.from, behavior: env.behavior, error: fromWireError(body.error) })
      } else {
        this.#emit({ type: 'unmatched-reply', from: env.from, inReplyTo: id ?? '' })
      }
      return undefined
    }
    this.#asks.delete(id)
    return ask
  }

  /** Fails every ask waiting on node `toDid` with `error` (every connection to it closed). Returns how many. */
  failTo(toDid: string, error: () => Error): number {
    let n = 0
    for (const [id, a] of this.#asks) {
      if (a.toDid !== toDid) continue
      this.#asks.delete(id)
      a.reply.fail(error())
      n++
    }
    return n
  }

  /** Fails every pending ask with `error` (the endpoint is closing). */
  failAll(error: Error): void {
    const asks = [...this.#asks.values()]
    this.#asks.clear()
    for (const a of asks) a.reply.fail(error)
  }
}

/** Settles a taken ask with the answer's value or typed error. */
export function settleAsk(ask: RemoteAsk, env: Envelope): void {
  const body = env.body as AnswerBody
  if (body && body.ok === true) ask.reply.ok(body.value)
  else if (body && isWireError(body.error)) ask.reply.fail(fromWireError(body.error))
  else ask.reply.fail(new UnexpectedReplyError(`answer to ${env.inReplyTo} has neither a value nor an error`))
}
