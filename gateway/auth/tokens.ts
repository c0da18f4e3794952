// Opaque random tokens (sessions, email verification, password reset): 32 random bytes (256 bits) as
// base64url. Only their SHA-256 is stored, so a copy of the database opens no session.
import { createHash, randomBytes } from 'node:crypto'

export const newToken = (): string => randomBytes(32).toString('base64url')
export const tokenHash = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex')
/** A token as it crosses the wire: 43 base64url characters, nothing else. */
export const isToken = (x: unknown): x is string => typeof x === 'string' && /^[A-Za-z0-9_-]{43}$/.test(x)
