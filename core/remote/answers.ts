// What an answer envelope is (spec/actors.md, "Remote messages"): the reply to an ask or a refusal, sent back
// to whoever sent the envelope it answers. An answer is never answered.
import type { Envelope, JsonValue } from '../../identity/index.ts'
import type { WireError } from '../wire-error.ts'

/** Behavior of an answer to an earlier envelope (`inReplyTo`): `{ ok: true, value }` or `{ ok: false, error }`. */
export const REPLY_BEHAVIOR = '/noir/reply'
/** Behavior of a refusal that cannot name the refused envelope (it could not be decoded): `{ error }`. */
export const ERROR_BEHAVIOR = '/noir/error'

export type ReplyBody = { ok: true; value: JsonValue } | { ok: false; error: WireError }

export function isAnswer(env: Pick<Envelope, 'behavior'>): boolean {
  return env.behavior === REPLY_BEHAVIOR || env.behavior === ERROR_BEHAVIOR
}

/** A message body as canonical JSON takes it: `undefined` becomes `null`. */
export function jsonBody(value: unknown): JsonValue {
  return (value === undefined ? null : value) as JsonValue
}
