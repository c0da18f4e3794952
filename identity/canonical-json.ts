// RFC 8785 (JSON Canonicalization Scheme) for the JSON values we sign: object keys sorted by UTF-16 code
// units, no whitespace, strings and numbers serialized as ECMAScript's JSON.stringify does (which is what
// RFC 8785 specifies). Values without a canonical form are refused rather than silently changed.
import { NonCanonicalValueError } from './errors.ts'

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue }

/** Deepest nesting accepted, so hostile input cannot exhaust the stack. */
export const MAX_JSON_DEPTH = 64

/** Characters JSON.stringify writes as they are (no quote, backslash, control or surrogate half). */
// oxlint-disable-next-line no-control-regex -- control characters are exactly what JSON must escape
const PLAIN = /^[^"\\\x00-\x1f\ud800-\udfff]*$/

/** The canonical text of a string: quoted as it is when nothing in it needs an escape (a regex test costs a fraction of JSON.stringify). */
export function quoteJson(s: string): string {
  if (PLAIN.test(s)) return '"' + s + '"'
  if (!s.isWellFormed()) throw new NonCanonicalValueError('string holds a lone surrogate (not valid Unicode)')
  return JSON.stringify(s)
}


function enc(v: unknown, depth: number): string {
  switch (typeof v) {
    case 'string':
      return quoteJson(v)
    case 'number':
      if (!Number.isFinite(v)) throw new NonCanonicalValueError(`number ${String(v)} has no JSON form`)
      return JSON.stringify(v)
    case 'boolean':
      return v ? 'true' : 'false'
    case 'object': {
      if (v === null) return 'null'
      if (depth >= MAX_JSON_DEPTH) throw new NonCanonicalValueError(`JSON nested deeper than ${MAX_JSON_DEPTH}`)
      if (Array.isArray(v)) {
        let out = '['
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out += ','
          if (!(i in v)) throw new NonCanonicalValueError('array has a hole')
          out += enc(v[i], depth + 1)
        }
        return out + ']'
      }
      const proto = Object.getPrototypeOf(v) as unknown
      if (proto !== Object.prototype && proto !== null) throw new NonCanonicalValueError('only plain objects have a JSON form')
      const obj = v as Record<string, unknown>
      const keys = Object.keys(obj).sort()
      let out = '{'
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!
        const val = obj[k]
        if (val === undefined) throw new NonCanonicalValueError(`property ${JSON.stringify(k)} is undefined`)
        if (i > 0) out += ','
        out += quoteJson(k) + ':' + enc(val, depth + 1)
      }
      return out + '}'
    }
    default:
      throw new NonCanonicalValueError(`a ${typeof v} has no JSON form`)
  }
}

/** The RFC 8785 canonical JSON text of `value`. Throws NonCanonicalValueError. */
export function canonicalJson(value: unknown): string {
  return enc(value, 0)
}

const encoder = new TextEncoder()

/** UTF-8 bytes of the canonical JSON text. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return encoder.encode(enc(value, 0))
}
