// The receive path's one-pass parser of canonical payloads, held to the full decoder's definition: whatever it
// accepts must parse (JSON.parse) to an equal value whose canonical JSON is exactly the text; it may decline
// (undefined) but never accept a non-canonical text. Checked on random envelopes and random mutations of them,
// and on each canonical-form rule by name.
import t from 'tap'
import { deepStrictEqual } from 'node:assert'
import { canonicalJson, decodePayload, MalformedEnvelopeError, NodeKey, prepareEnvelope, type JsonValue } from '../index.ts'
import { FAST_DEPTH, parseCanonicalEnvelope } from '../canonical-envelope-parser.ts'

const sender = NodeKey.generate()
const receiver = NodeKey.generate()

/** A small deterministic PRNG, so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const ODD_CHARS = ['\n', '\t', '\u0001', '\u001f', '"', '\\', '/', '\u007f', 'é', '€', '😀', '\u2028', ' ', 'a', 'Z', '0', '_proto_']
const NUMBERS = [0, 1, -1, 7, 10, 123456789012345, 1234567890123456, 9007199254740991, -9007199254740991, 1e21, 1e-7, 0.1, -0.5, 1.5e300, 2 ** 60, 5e-324, 123.456, 100, 1e15, 999999999999999]

function randomString(r: () => number): string {
  let s = ''
  const n = Math.floor(r() * 6)
  for (let k = 0; k < n; k++) s += r() < 0.5 ? String.fromCharCode(0x61 + Math.floor(r() * 26)) : ODD_CHARS[Math.floor(r() * ODD_CHARS.length)]!
  return s
}

function randomValue(r: () => number, depth: number): JsonValue {
  const pick = r()
  if (depth > 4 || pick < 0.45) {
    const p = r()
    if (p < 0.15) return null
    if (p < 0.25) return r() < 0.5
    if (p < 0.6) return r() < 0.5 ? NUMBERS[Math.floor(r() * NUMBERS.length)]! : Math.floor((r() - 0.5) * 2e6)
    return randomString(r)
  }
  if (pick < 0.7) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1))
  const o: Record<string, JsonValue> = {}
  const n = Math.floor(r() * 4)
  for (let k = 0; k < n; k++) o[randomString(r)] = randomValue(r, depth + 1)
  return o
}

function randomPayload(r: () => number): string {
  const init = {
    from: sender.did,
    to: `${receiver.did}/sink`,
    behavior: '/bench/hit',
    body: randomValue(r, 0),
    ...(r() < 0.3 ? { replyTo: `${sender.did}/asker` } : {}),
    ...(r() < 0.3 ? { inReplyTo: `id-${Math.floor(r() * 1e6)}` } : {}),
  }
  return Buffer.from(prepareEnvelope(sender, init).payload).toString('utf8')
}

/** The full decoder's definition of "canonical", independent of the parser under test. */
function canonicalParse(text: string): { ok: true; value: unknown } | { ok: false } {
  let value: unknown
  try {
    value = JSON.parse(text)
    if (canonicalJson(value) !== text) return { ok: false }
  } catch {
    return { ok: false }
  }
  return { ok: true, value }
}

function mutate(r: () => number, text: string): string {
  const at = Math.floor(r() * text.length)
  const ops = [
    () => text.slice(0, at) + text.slice(at + 1), // delete a character
    () => text.slice(0, at) + ' ' + text.slice(at), // whitespace
    () => text.slice(0, at) + String.fromCharCode(Math.floor(r() * 128)) + text.slice(at + 1), // replace with ASCII
    () => text.slice(0, at) + ['0', '-', '.', 'e', '"', '\\', ',', ':', '{', '}', '[', ']', 'E', '+'][Math.floor(r() * 14)] + text.slice(at), // insert a JSON character
    () => text.replace(/:(\d+)/, ':0$1'), // leading zero
    () => text.replace(/:(\d+)/, ':$1.0'), // fraction on an integer
    () => text.replace('"body":', '"body": '),
    () => text + (r() < 0.5 ? ' ' : '}'),
    () => text.replace(/\\n/, '\\u000a'),
    () => text.replace(/"([a-z])/, '"\\u00$1'),
  ]
  return ops[Math.floor(r() * ops.length)]!()
}

t.test('random canonical envelopes parse to exactly what JSON.parse gives', async (t) => {
  const r = prng(1)
  let parsed = 0
  for (let k = 0; k < 3000; k++) {
    const text = randomPayload(r)
    const fast = parseCanonicalEnvelope(text)
    if (fast === undefined) continue
    parsed++
    deepStrictEqual(fast, JSON.parse(text))
    t.equal(Object.getPrototypeOf(fast), Object.prototype)
  }
  // the random bodies stay far inside FAST_DEPTH and carry no proofs: every one is on the fast path
  t.equal(parsed, 3000, 'every canonical envelope was parsed by the one-pass parser')
})

t.test('a mutated envelope is accepted only when it is still canonical, and then parses the same', async (t) => {
  const r = prng(2)
  let accepted = 0
  let declined = 0
  for (let k = 0; k < 30_000; k++) {
    const text = mutate(r, randomPayload(r))
    const fast = parseCanonicalEnvelope(text)
    if (fast === undefined) {
      declined++
      continue
    }
    accepted++
    const reference = canonicalParse(text)
    if (!reference.ok) t.fail(`accepted a non-canonical text: ${JSON.stringify(text)}`)
    else deepStrictEqual(fast, reference.value)
  }
  t.ok(declined > 20_000, `most mutations are refused (${declined})`)
  t.ok(accepted > 0, `some mutations leave the text canonical (${accepted}), and those are accepted`)
})

t.test('each canonical-form rule, by name', async (t) => {
  const base = Buffer.from(prepareEnvelope(sender, { from: sender.did, to: `${receiver.did}/x`, behavior: '/b', body: 0 }).payload).toString('utf8')
  const withBody = (body: string): string => base.replace('"body":0', `"body":${body}`)
  t.ok(parseCanonicalEnvelope(base), 'the plain envelope')
  const refused: Record<string, string> = {
    'minus zero': withBody('-0'),
    'leading zero': withBody('01'),
    'integer with a fraction': withBody('1.0'),
    'integer written with an exponent': withBody('1e3'),
    'upper-case exponent': withBody('1E+21'),
    'exponent without sign': withBody('1e21'),
    'plus sign': withBody('+1'),
    'bare fraction': withBody('.5'),
    'integer beyond 2^53 that rounds': withBody('9007199254740993'),
    'sixteen-digit integer not its own toString': withBody('1234567890123456789'),
    'unsorted keys': withBody('{"b":1,"a":2}'),
    'duplicate keys': withBody('{"a":1,"a":2}'),
    '__proto__ key': withBody('{"__proto__":1}'),
    'space after colon': withBody('{"a": 1}'),
    'escaped solidus': withBody('"a\\/b"'),
    'needless \\u escape': withBody('"\\u0041"'),
    'upper-case hex escape': withBody('"\\u001F"'),
    '\\u escape where a short one exists': withBody('"\\u000a"'),
    'raw control character': withBody('"a\u0001b"'),
    'lone surrogate escape': withBody('"\\ud800"'),
    'unterminated string': withBody('"abc'),
    'true misspelt': withBody('tru'),
    'trailing comma in array': withBody('[1,]'),
    'trailing comma in object': withBody('{"a":1,}'),
    'whitespace before the end': base.replace('"v":1}', '"v":1 }'),
    'text after the end': base + ' ',
    'version 2': base.replace('"v":1}', '"v":2}'),
    'an unknown member': base.replace('"v":1}', '"v":1,"w":1}'),
    'members out of order': base.replace(/"exp":(\d+),"from":("[^"]+")/, '"from":$2,"exp":$1'),
    'proofs (left to the full decoder)': base.replace(',"to":', ',"proofs":["x"],"to":'),
    [`nesting deeper than ${FAST_DEPTH} (left to the full decoder)`]: withBody('['.repeat(FAST_DEPTH + 1) + ']'.repeat(FAST_DEPTH + 1)),
  }
  for (const [name, text] of Object.entries(refused)) t.equal(parseCanonicalEnvelope(text), undefined, name)
  const accepted: Record<string, [string, unknown]> = {
    'negative integer': [withBody('-42'), -42],
    'fifteen-digit integer': [withBody('999999999999999'), 999999999999999],
    'sixteen-digit integer that is its own toString': [withBody('9007199254740991'), 9007199254740991],
    'fraction': [withBody('0.1'), 0.1],
    'large exponent': [withBody('1e+21'), 1e21],
    'small exponent': [withBody('1e-7'), 1e-7],
    'short escapes': [withBody('"a\\n\\t\\"\\\\b"'), 'a\n\t"\\b'],
    'lower-case \\u escape of a control': [withBody('"\\u001f"'), '\u001f'],
    'raw non-ASCII and DEL': [withBody('"é€😀\u007f"'), 'é€😀\u007f'],
    'keys in UTF-16 order': [withBody('{"":0,"A":1,"a":2,"é":3,"😀":4,"\uffff":5}'), { '': 0, A: 1, a: 2, é: 3, '😀': 4, '\uffff': 5 }],
    [`nesting of ${FAST_DEPTH}`]: [withBody('['.repeat(FAST_DEPTH) + ']'.repeat(FAST_DEPTH)), JSON.parse('['.repeat(FAST_DEPTH) + ']'.repeat(FAST_DEPTH))],
  }
  for (const [name, [text, body]] of Object.entries(accepted)) {
    const got = parseCanonicalEnvelope(text)
    t.ok(got, name)
    if (got) deepStrictEqual(got.body, body)
    t.ok(canonicalParse(text).ok, `${name}: canonical by the reference definition too`)
  }
})

t.test('decodePayload gives the same envelopes and errors with the fast path as the full decoder', async (t) => {
  const r = prng(3)
  for (let k = 0; k < 500; k++) {
    const text = randomPayload(r)
    deepStrictEqual(decodePayload(Buffer.from(text)), JSON.parse(text))
  }
  // refused on the fast path's shape but by the field rules: the same typed errors as before
  const base = Buffer.from(prepareEnvelope(sender, { from: sender.did, to: `${receiver.did}/x`, behavior: '/b', body: 0 }).payload).toString('utf8')
  const cases: [string, RegExp][] = [
    [base.replace(/"iat":\d+/, '"iat":1.5'), /iat must be a non-negative integer/],
    [base.replace(/"exp":\d+/, '"exp":1'), /exp must be an integer \(ms\) after iat/],
    [base.replace(/"nonce":"[^"]+"/, '"nonce":"short"'), /nonce must be 8-64 base64url characters/],
    [base.replace('"behavior":"/b"', '"behavior":"no-slash"'), /behavior must be a path/],
    [base.replace(/"id":"[^"]+"/, '"id":""'), /id must be 1-128 printable ASCII characters/],
    [base.replace('"body":0', '"body":01'), /not JSON/],
    [base.replace('"body":0', '"body":1.0'), /not RFC 8785 canonical JSON/],
  ]
  for (const [text, message] of cases) t.throws(() => decodePayload(Buffer.from(text)), { name: MalformedEnvelopeError.name, message }, String(message))
})

t.test('a built payload is exactly canonicalJson of its envelope, whatever the body and id hold', async (t) => {
  const r = prng(4)
  const ids = ['plain-id', 'with"quote', 'back\\slash', '~!#$%&()*+,-./:;<=>?@[]^_`{|}', 'x'.repeat(128)]
  for (let k = 0; k < 2000; k++) {
    const init = {
      from: `${sender.did}/a`,
      to: `${receiver.did}/b/c`,
      behavior: '/x/y',
      body: randomValue(r, 0),
      id: ids[k % ids.length]!,
      ...(r() < 0.3 ? { replyTo: `${sender.did}/asker` } : {}),
      ...(r() < 0.3 ? { inReplyTo: ids[(k + 1) % ids.length]! } : {}),
      ...(r() < 0.2 ? { proofs: ['eyJ.a.b'] } : {}),
      now: 1_700_000_000_000 + Math.floor(r() * 1e9),
    }
    const { envelope, payload } = prepareEnvelope(sender, init)
    const text = Buffer.from(payload).toString('utf8')
    if (text !== canonicalJson(envelope)) t.fail(`payload differs from canonicalJson: ${text}`)
    deepStrictEqual(decodePayload(payload), envelope)
  }
  t.pass('2000 payloads')
})
