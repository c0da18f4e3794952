// A small JSON Schema (2020-12 subset) validator: exactly the keywords spec/workload.schema.json uses, so the
// workload object needs no new dependency. Every problem is reported with a JSON path and a plain reason;
// an unknown keyword in a schema is a programming error and throws at once.
import type { WorkloadIssue } from '../errors.ts'

export type JsonSchema = { [keyword: string]: unknown }

const known = new Set([
  '$schema', '$id', 'title', 'description', 'default', '$defs', '$ref', 'type', 'enum', 'const', 'properties',
  'required', 'additionalProperties', 'propertyNames', 'items', 'minItems', 'maxItems', 'minimum', 'maximum',
  'exclusiveMinimum', 'minLength', 'maxLength', 'pattern', 'allOf', 'if', 'then',
])

// NaN and the infinities (YAML's .nan, .inf) are numbers to JavaScript but not to JSON: they match no
// numeric type, so they are refused here, by field, instead of failing later as an internal error.
const typeOf = (v: unknown): string =>
  v === null ? 'null'
    : Array.isArray(v) ? 'array'
      : typeof v === 'number' ? (!Number.isFinite(v) ? String(v) : Number.isInteger(v) ? (Number.isSafeInteger(v) ? 'integer' : 'unsafe integer') : 'number')
        : typeof v

const typeMatches = (v: unknown, t: string): boolean => {
  const actual = typeOf(v)
  return actual === t || (t === 'number' && (actual === 'integer' || actual === 'unsafe integer'))
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

const childPath = (path: string, key: string | number): string =>
  typeof key === 'number' ? `${path}[${key}]` : /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`

const show = (v: unknown): string => JSON.stringify(v)

export class SchemaValidator {
  readonly #root: JsonSchema
  readonly #patterns = new Map<string, RegExp>()

  constructor(root: JsonSchema) {
    this.#root = root
  }

  /** Every issue found (empty when the value is valid). */
  validate(value: unknown): WorkloadIssue[] {
    const issues: WorkloadIssue[] = []
    this.#check(this.#root, value, '$', issues)
    return issues
  }

  #regex(p: string): RegExp {
    let r = this.#patterns.get(p)
    if (!r) {
      r = new RegExp(p, 'u')
      this.#patterns.set(p, r)
    }
    return r
  }

  #resolve(ref: string): JsonSchema {
    if (!ref.startsWith('#/')) throw new Error(`only local $ref is supported: ${ref}`)
    let node: unknown = this.#root
    for (const part of ref.slice(2).split('/')) node = isObject(node) ? node[part] : undefined
    if (!isObject(node)) throw new Error(`unresolvable $ref ${ref}`)
    return node
  }

  #check(schema: JsonSchema, v: unknown, path: string, out: WorkloadIssue[]): void {
    for (const k of Object.keys(schema)) if (!known.has(k)) throw new Error(`schema keyword not supported: ${k}`)
    if (typeof schema.$ref === 'string') this.#check(this.#resolve(schema.$ref), v, path, out)

    if (schema.const !== undefined && show(v) !== show(schema.const)) {
      out.push({ path, reason: `must be ${show(schema.const)}` })
      return
    }
    if (Array.isArray(schema.enum) && !schema.enum.some((e) => show(e) === show(v))) {
      out.push({ path, reason: `must be one of ${schema.enum.map(show).join(', ')} (got ${show(v)})` })
      return
    }
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string]
      if (!types.some((t) => typeMatches(v, t))) {
        out.push({ path, reason: `must be ${types.join(' or ')} (got ${typeOf(v)})` })
        return
      }
    }
    if (typeof v === 'number') {
      if (typeof schema.minimum === 'number' && v < schema.minimum) out.push({ path, reason: `must be >= ${schema.minimum}` })
      if (typeof schema.maximum === 'number' && v > schema.maximum) out.push({ path, reason: `must be <= ${schema.maximum}` })
      if (typeof schema.exclusiveMinimum === 'number' && v <= schema.exclusiveMinimum) out.push({ path, reason: `must be > ${schema.exclusiveMinimum}` })
    }
    if (typeof v === 'string') {
      const len = [...v].length
      if (typeof schema.minLength === 'number' && len < schema.minLength) out.push({ path, reason: `must be at least ${schema.minLength} characters` })
      if (typeof schema.maxLength === 'number' && len > schema.maxLength) out.push({ path, reason: `must be at most ${schema.maxLength} characters` })
      if (typeof schema.pattern === 'string' && !this.#regex(schema.pattern).test(v)) out.push({ path, reason: `does not match ${schema.pattern} (got ${show(v)})` })
    }
    if (Array.isArray(v)) {
      if (typeof schema.minItems === 'number' && v.length < schema.minItems) out.push({ path, reason: `must have at least ${schema.minItems} items` })
      if (typeof schema.maxItems === 'number' && v.length > schema.maxItems) out.push({ path, reason: `must have at most ${schema.maxItems} items` })
      if (isObject(schema.items)) v.forEach((item, i) => this.#check(schema.items as JsonSchema, item, childPath(path, i), out))
    }
    if (isObject(v)) {
      const props = isObject(schema.properties) ? schema.properties : {}
      if (Array.isArray(schema.required)) {
        for (const r of schema.required as string[]) if (!(r in v)) out.push({ path: childPath(path, r), reason: 'is required' })
      }
      for (const [k, child] of Object.entries(v)) {
        const p = childPath(path, k)
        if (isObject(schema.propertyNames)) {
          const before = out.length
          this.#check(schema.propertyNames, k, p, out)
          for (let i = before; i < out.length; i++) out[i] = { path: p, reason: `name ${out[i]!.reason}` }
        }
        const ps = props[k]
        if (isObject(ps)) this.#check(ps, child, p, out)
        else if (schema.additionalProperties === false) out.push({ path: p, reason: 'is not allowed here (unknown field)' })
        else if (isObject(schema.additionalProperties)) this.#check(schema.additionalProperties, child, p, out)
      }
    }
    if (Array.isArray(schema.allOf)) for (const s of schema.allOf as JsonSchema[]) this.#check(s, v, path, out)
    if (isObject(schema.if) && isObject(schema.then)) {
      if (this.validateAgainst(schema.if, v)) this.#check(schema.then, v, path, out)
    }
  }

  /** Whether `v` satisfies `schema` (used for `if`). */
  validateAgainst(schema: JsonSchema, v: unknown): boolean {
    const out: WorkloadIssue[] = []
    this.#check(schema, v, '$', out)
    return out.length === 0
  }
}
