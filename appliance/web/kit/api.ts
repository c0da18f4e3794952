// The pages' one way to call their API: same-origin fetch with the session cookie (never a token in the page,
// a URL or localStorage), JSON in and out, an answer >= 400 thrown as an ApiError carrying the server's typed
// error name. The gateway answers errors as problem+json ({ name, detail }); the node daemon as { error }.
export class ApiError extends Error {
  readonly status: number
  readonly data: unknown
  constructor(name: string, message: string, status: number, data?: unknown) {
    super(message)
    this.name = name
    this.status = status
    this.data = data
  }
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  const text = await res.text()
  let value: unknown = null
  try {
    value = text.length > 0 ? JSON.parse(text) : null
  } catch {
    value = { detail: text }
  }
  if (!res.ok) {
    const v = (value ?? {}) as { name?: string; detail?: string; data?: unknown; error?: { name?: string; message?: string; data?: unknown } }
    throw new ApiError(v.name ?? v.error?.name ?? `HTTP${res.status}`, v.detail ?? v.error?.message ?? res.statusText, res.status, v.data ?? v.error?.data)
  }
  return value as T
}

/** `call`, but a route this server does not have (404 for the route itself) is `undefined`: the page shows "not available". */
export async function optional<T>(method: string, path: string, body?: unknown): Promise<T | undefined> {
  try {
    return await call<T>(method, path, body)
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && /route/i.test(err.message)) return undefined
    throw err
  }
}

/** Integer smallest units (a decimal string) as a decimal amount with `decimals` places, exactly (no floats). */
export function units(amount: string | number | bigint, decimals: number): string {
  const s = BigInt(amount).toString()
  const neg = s.startsWith('-')
  const digits = (neg ? s.slice(1) : s).padStart(decimals + 1, '0')
  const whole = digits.slice(0, digits.length - decimals)
  const frac = digits.slice(digits.length - decimals).replace(/0+$/, '')
  return `${neg ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`
}
