// Every envelope object on the hot paths is made by this one function, with its members in canonical order
// (spec/envelope.md): the parser of received payloads and the builder of envelopes to send alike. V8 gives
// objects that gain the same members in the same order one hidden class, so the code that reads envelopes
// (the field rules, the remote endpoint, the actor system) meets a handful of shapes (tell, ask, answer,
// with proofs) instead of one set per path; past four, each member read goes through a slow generic lookup
// (measured: the field rules cost ~0.7 µs per envelope on a node that both sent and received, ~0.15 µs in a
// microbenchmark that met one shape; on the receiver they went from 5.2% of the main thread to 0.7%).

/** A new envelope object; optional members (inReplyTo, proofs, replyTo, trace) only when defined. */
export function makeEnvelope(
  behavior: unknown,
  body: unknown,
  exp: unknown,
  from: unknown,
  iat: unknown,
  id: unknown,
  inReplyTo: unknown,
  nonce: unknown,
  proofs: unknown,
  replyTo: unknown,
  to: unknown,
  trace?: unknown,
): Record<string, unknown> {
  const env: Record<string, unknown> = { behavior, body, exp, from, iat, id }
  if (inReplyTo !== undefined) env.inReplyTo = inReplyTo
  env.nonce = nonce
  if (proofs !== undefined) env.proofs = proofs
  if (replyTo !== undefined) env.replyTo = replyTo
  env.to = to
  if (trace !== undefined) env.trace = trace
  env.v = 1
  return env
}
