// A one-pass parser for envelope payloads that are already in canonical form (spec/envelope.md): the receive
// path's fast way to both parse a payload and prove it canonical, instead of JSON.parse followed by
// re-serializing the result and comparing texts.
//
// It returns the parsed object only when the text is exactly the RFC 8785 text of that object, with the
// envelope's members in their canonical order; for anything else (any deviation at all, or a shape it leaves to
// the full decoder: `proofs`, nesting deeper than FAST_DEPTH) it returns undefined and the caller runs the full
// decoder, which accepts or refuses with the precise error. So it may decline what is valid, but never accepts
// what the full decoder would refuse, and what it returns is what JSON.parse would (a differential test in
// identity/test/canonical-envelope-parser.test.ts holds it to that).
//
// Canonical forms checked here, token by token:
// - strings: raw characters except `"`, `\` and controls, or escapes exactly as JSON.stringify writes them
//   (checked by JSON.parse then JSON.stringify of the token) and well-formed (no lone surrogate);
// - numbers: the token is String(Number(token)) (ECMAScript Number::toString, which RFC 8785 uses; "-0",
//   exponents of integers, leading zeros and the like all differ);
// - objects: member names strictly increasing in UTF-16 code units (so no duplicates), no `__proto__` (which
//   JSON.parse makes an own property but assignment would not);
// - no whitespace anywhere, nothing after the closing brace.

import { makeEnvelope } from './envelope-object.ts'

/** Containers nested deeper than this are left to the full decoder (which allows MAX_JSON_DEPTH). */
export const FAST_DEPTH = 32

const FAIL: unique symbol = Symbol('not canonical')
type Parsed = unknown

// The text and position being parsed: module state, so the recursive helpers need no closure (the parser is
// synchronous and never re-entered).
let s = ''
let i = 0

const QUOTE = 0x22
const BACKSLASH = 0x5c

/** Parses the canonical text of an envelope object, or undefined when it is not on this parser's path. */
export function parseCanonicalEnvelope(text: string): Record<string, unknown> | undefined {
  s = text
  i = 0
  try {
    return envelope()
  } finally {
    s = ''
  }
}

// The envelope's own members around the body, matched by two sticky regular expressions (compiled to machine
// code, several times faster than a loop over the characters): top-level strings on this path hold raw
// characters only (no escape, quote or control: a text is its own canonical form), integers at most 15
// digits without a leading zero (their own Number::toString). Anything else (an escaped id, a 16-digit
// time) is left to the full decoder.
const RAW = '([^"\\\\\\x00-\\x1f]*)'
const INT = '(0|[1-9][0-9]{0,14})'
const HEAD = new RegExp(`\\{"behavior":"${RAW}","body":`, 'y')
const TAIL = new RegExp(`,"exp":${INT},"from":"${RAW}","iat":${INT},"id":"${RAW}"(?:,"inReplyTo":"${RAW}")?,"nonce":"${RAW}"(?:,"replyTo":"${RAW}")?,"to":"${RAW}"(?:,"trace":"${RAW}")?,"v":1\\}$`, 'y')

function envelope(): Record<string, unknown> | undefined {
  HEAD.lastIndex = 0
  const head = HEAD.exec(s)
  if (head === null) return undefined
  i = HEAD.lastIndex
  const body = value(0)
  if (body === FAIL) return undefined
  TAIL.lastIndex = i
  const m = TAIL.exec(s)
  if (m === null) return undefined
  // members in the order JSON.parse would create them (the payload's, which is sorted)
  return makeEnvelope(head[1], body, Number(m[1]), m[2], Number(m[3]), m[4], m[5], m[6], undefined, m[7], m[8], m[9])
}

function lit(l: string): boolean {
  if (!s.startsWith(l, i)) return false
  i += l.length
  return true
}

function value(depth: number): Parsed {
  const c = s.charCodeAt(i)
  if (c === QUOTE) return string()
  if (c === 0x7b) return object(depth)
  if (c === 0x5b) return array(depth)
  if (c === 0x74) return lit('true') ? true : FAIL
  if (c === 0x66) return lit('false') ? false : FAIL
  if (c === 0x6e) return lit('null') ? null : FAIL
  return number()
}

function object(depth: number): Parsed {
  if (depth >= FAST_DEPTH) return FAIL
  i++ // {
  const o: Record<string, unknown> = {}
  if (s.charCodeAt(i) === 0x7d) {
    i++
    return o
  }
  let previous: string | undefined
  for (;;) {
    if (s.charCodeAt(i) !== QUOTE) return FAIL
    const key = string()
    if (key === FAIL || (previous !== undefined && !(previous < (key as string))) || key === '__proto__') return FAIL
    if (s.charCodeAt(i) !== 0x3a) return FAIL
    i++
    const v = value(depth + 1)
    if (v === FAIL) return FAIL
    o[key as string] = v
    previous = key as string
    const c = s.charCodeAt(i++)
    if (c === 0x7d) return o
    if (c !== 0x2c) return FAIL
  }
}

function array(depth: number): Parsed {
  if (depth >= FAST_DEPTH) return FAIL
  i++ // [
  const a: unknown[] = []
  if (s.charCodeAt(i) === 0x5d) {
    i++
    return a
  }
  for (;;) {
    const v = value(depth + 1)
    if (v === FAIL) return FAIL
    a.push(v)
    const c = s.charCodeAt(i++)
    if (c === 0x5d) return a
    if (c !== 0x2c) return FAIL
  }
}

/** A string token of raw characters only (the common case), matched in one step. */
// oxlint-disable-next-line no-control-regex -- control characters are exactly what JSON must escape
const RAW_STRING = /"[^"\\\x00-\x1f]*"/y

/** A string token at `i` (which must be at its opening quote). */
function string(): Parsed {
  RAW_STRING.lastIndex = i
  if (RAW_STRING.test(s)) {
    const end = RAW_STRING.lastIndex
    const v = s.slice(i + 1, end - 1)
    i = end
    return v
  }
  // not a raw string: an escape (handled below), a control character, no closing quote, or no string at all
  if (s.charCodeAt(i) !== QUOTE) return FAIL
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j)
    if (c === BACKSLASH) return escapedString(i, j)
    // a closing quote before any backslash would have been a raw string
    if (c < 0x20 || c === QUOTE) return FAIL
  }
  return FAIL
}

/** A string token with escapes, from its opening quote at `open`; `j` is its first backslash. */
function escapedString(open: number, j: number): Parsed {
  for (; j < s.length; j++) {
    const c = s.charCodeAt(j)
    if (c === BACKSLASH) j++
    else if (c === QUOTE) break
  }
  if (j >= s.length) return FAIL
  const token = s.slice(open, j + 1)
  let v: unknown
  try {
    v = JSON.parse(token)
  } catch {
    return FAIL
  }
  if (typeof v !== 'string' || !v.isWellFormed() || JSON.stringify(v) !== token) return FAIL
  i = j + 1
  return v
}

/** A number token: canonical only when it is exactly Number::toString of its value. */
function number(): Parsed {
  const start = i
  // the common case first: an integer of at most 15 digits, no leading zero (exact in a double, and its own
  // Number::toString), read without making a string
  let j = s.charCodeAt(i) === 0x2d ? i + 1 : i
  const first = j
  let n = 0
  for (; j < s.length && j - first < 16; j++) {
    const c = s.charCodeAt(j)
    if (c < 0x30 || c > 0x39) break
    n = n * 10 + (c - 0x30)
  }
  const digits = j - first
  if (digits > 0 && digits <= 15 && !(digits > 1 && s.charCodeAt(first) === 0x30)) {
    const c = j < s.length ? s.charCodeAt(j) : 0
    const more = (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2b || c === 0x2d || c === 0x65 || c === 0x45
    if (!more) {
      if (first === start) {
        i = j
        return n
      }
      if (n !== 0) {
        i = j
        return -n
      }
      return FAIL // "-0"
    }
  }
  j = i
  for (; j < s.length; j++) {
    const c = s.charCodeAt(j)
    // 0-9 . + - e E
    if (!((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2b || c === 0x2d || c === 0x65 || c === 0x45)) break
  }
  if (j === start) return FAIL
  const token = s.slice(start, j)
  const value = Number(token)
  if (String(value) !== token) return FAIL
  i = j
  return value
}
