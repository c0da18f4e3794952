// Errors on the wire: `{ name, code, message, data? }` (spec/actors.md). A received error becomes an
// instance of the class registered under its `name` (so `instanceof` and `name` both work for the caller);
// an unregistered name becomes a RemoteError that keeps the name. Other layers register their classes
// with `registerErrorClass`; identity's and core's are registered here.
import * as coreErrors from './errors.ts'
import * as identity from '../identity/index.ts'
import { NoirError, RemoteError, type ErrorData } from './errors.ts'

export interface WireError {
  name: string
  code: string
  message: string
  data?: ErrorData
}

type ErrorClass = abstract new (...args: never[]) => Error

const registry = new Map<string, ErrorClass>()

/** Registers an error class so errors with its `name` arriving from elsewhere are rebuilt as instances of it. */
export function registerErrorClass(cls: ErrorClass, name: string = cls.name): void {
  registry.set(name, cls)
}

for (const value of [...Object.values(identity), ...Object.values(coreErrors)]) {
  if (typeof value === 'function' && (value === NoirError || value.prototype instanceof Error) && value !== RemoteError) {
    registerErrorClass(value as ErrorClass)
  }
}

const MAX_TEXT = 1024

function jsonSafe(data: unknown): ErrorData | undefined {
  if (data === undefined || data === null || typeof data !== 'object') return undefined
  try {
    const text = JSON.stringify(data)
    if (text === undefined || text.length > 8 * MAX_TEXT) return undefined
    return JSON.parse(text) as ErrorData
  } catch {
    return undefined
  }
}

/** Turns any thrown value into the wire form. Stack traces never leave the process. */
export function toWireError(err: unknown): WireError {
  if (err instanceof Error) {
    const rawCode: unknown = (err as { code?: unknown }).code
    const code = typeof rawCode === 'string' ? rawCode : 'ERROR'
    const data = jsonSafe((err as { data?: unknown }).data)
    return { name: err.name.slice(0, 128), code: code.slice(0, 128), message: err.message.slice(0, MAX_TEXT), ...(data ? { data } : {}) }
  }
  return { name: 'Error', code: 'ERROR', message: String(err).slice(0, MAX_TEXT) }
}

/** True when `value` has the wire error shape. */
export function isWireError(value: unknown): value is WireError {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return typeof v.name === 'string' && typeof v.code === 'string' && typeof v.message === 'string' &&
    (v.data === undefined || (typeof v.data === 'object' && v.data !== null))
}

/** Rebuilds an error from its wire form as an instance of the registered class with the same `name`. */
export function fromWireError(wire: WireError): Error {
  const cls = registry.get(wire.name)
  if (!cls) return new RemoteError(wire.name, wire.code, wire.message, wire.data)
  const err = Object.create(cls.prototype) as Error & { code?: string; data?: ErrorData }
  Error.captureStackTrace(err, fromWireError)
  Object.defineProperty(err, 'message', { value: wire.message, writable: true, configurable: true, enumerable: false })
  err.name = wire.name
  err.code = wire.code
  err.data = wire.data
  return err
}
