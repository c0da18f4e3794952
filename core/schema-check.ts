// JSON Schemas (draft 2020-12) checked by Ajv, the validator fastify compiles the gateway's request schemas
// with: one standard implementation, each schema compiled once. Used for the workload object
// (spec/workload.schema.json) and the node's local API bodies. Ajv's errors are said as paths and plain
// reasons that name what was given: `$.resources.cpu: must be >= 0.01`, `$.ports[0].port`, `$.env["1BAD"]`.
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js'

/** One problem with a value: where (a JSON path from `$`) and why. */
export interface SchemaIssue {
  path: string
  reason: string
}

export type JsonSchema = { [keyword: string]: unknown }

// NaN and the infinities (YAML's .nan, .inf) are numbers to JavaScript but not to JSON (Ajv's strictNumbers
// refuses them); an integer beyond 2^53 is not exact in JSON's readers either.
const typeOf = (v: unknown): string =>
  v === null ? 'null'
    : Array.isArray(v) ? 'array'
      : typeof v === 'number' ? (!Number.isFinite(v) ? String(v) : Number.isInteger(v) ? (Number.isSafeInteger(v) ? 'integer' : 'unsafe integer') : 'number')
        : typeof v

const show = (v: unknown): string => JSON.stringify(v)

const childPath = (path: string, key: string): string =>
  /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`

/** A JSON Pointer into the value, as the path the issues use; array indexes as [i]. */
function pathOf(pointer: string, root: unknown): string {
  let path = '$'
  let node: unknown = root
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(node)) {
      path = `${path}[${key}]`
      node = node[Number(key)]
    } else {
      path = childPath(path, key)
      node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined
    }
  }
  return path
}

function issueOf(e: ErrorObject, root: unknown): SchemaIssue | undefined {
  const at = pathOf(e.instancePath, root)
  const p = e.params as Record<string, unknown>
  const named = (e as { propertyName?: string }).propertyName
  const reason = (): string | undefined => {
    switch (e.keyword) {
      case 'required': return 'is required'
      case 'additionalProperties': return 'is not allowed here (unknown field)'
      case 'type': return `must be ${Array.isArray(p.type) ? (p.type as string[]).join(' or ') : String(p.type)} (got ${typeOf(e.data)})`
      case 'enum': return `must be one of ${(p.allowedValues as unknown[]).map(show).join(', ')} (got ${show(e.data)})`
      case 'const': return `must be ${show(p.allowedValue)}`
      case 'pattern': return `does not match ${String(p.pattern)} (got ${show(e.data)})`
      case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum': return `must be ${String(p.comparison)} ${String(p.limit)}`
      case 'minLength': return `must be at least ${String(p.limit)} characters`
      case 'maxLength': return `must be at most ${String(p.limit)} characters`
      case 'minItems': return `must have at least ${String(p.limit)} items`
      case 'maxItems': return `must have at most ${String(p.limit)} items`
      case 'if': case 'propertyNames': return undefined // summaries of the errors reported beside them
      default: return e.message ?? e.keyword
    }
  }
  const r = reason()
  if (r === undefined) return undefined
  if (e.keyword === 'required') return { path: childPath(at, String(p.missingProperty)), reason: r }
  if (e.keyword === 'additionalProperties') return { path: childPath(at, String(p.additionalProperty)), reason: r }
  if (named !== undefined) return { path: childPath(at, named), reason: `name ${r}` }
  return { path: at, reason: r }
}

/** Integers beyond 2^53 anywhere in the value (JSON readers do not keep them exact). */
function unsafeIntegers(v: unknown, path: string, out: SchemaIssue[]): void {
  if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) out.push({ path, reason: `must be an integer below 2^53 (got an unsafe integer, ${v})` })
  else if (Array.isArray(v)) v.forEach((x, i) => unsafeIntegers(x, `${path}[${i}]`, out))
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) unsafeIntegers(x, childPath(path, k), out)
}

// allErrors: every issue at once, as a person fixing a file wants them; verbose: the value each is about
let shared: Ajv2020 | undefined
const ajv = (): Ajv2020 => (shared ??= new Ajv2020({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true, strictNumbers: true, unicodeRegExp: true, addUsedSchema: false }))

export class SchemaValidator {
  readonly #check: ReturnType<Ajv2020['compile']>
  readonly #exactIntegers: boolean

  /**
   * Compiles `root` (a schema error, or a keyword Ajv's strict mode does not know, throws here).
   * `exactIntegers`: every integer anywhere in the value must be below 2^53 (for documents whose every number the
   * schema types, like the workload; not for a body that carries a free-form part another check reads).
   */
  constructor(root: JsonSchema, o: { exactIntegers?: boolean } = {}) {
    this.#check = ajv().compile(root)
    this.#exactIntegers = o.exactIntegers === true
  }

  /** Every issue found (empty when the value is valid). */
  validate(value: unknown): SchemaIssue[] {
    const out: SchemaIssue[] = []
    if (this.#exactIntegers) unsafeIntegers(value, '$', out)
    if (!this.#check(value)) for (const e of this.#check.errors ?? []) {
      const i = issueOf(e, value)
      // one issue per path for an unsafe integer (its bounds say nothing more); no issue twice
      if (i && !out.some((o) => o.path === i.path && (o.reason === i.reason || o.reason.includes('unsafe integer')))) out.push(i)
    }
    return out
  }
}
