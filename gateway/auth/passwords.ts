// Passwords (spec/auth.md "Passwords"): argon2id from node:crypto at OWASP's recommended minimum (m = 19 MiB,
// t = 2, p = 1), a 16-byte random salt, a 32-byte tag, stored as a PHC string; compared in constant time.
// Policy (OWASP ASVS 5 V6.2): 12 to 128 characters, any characters, no composition rules.
import { argon2, randomBytes, timingSafeEqual } from 'node:crypto'
import { WeakPasswordError } from '../errors.ts'

export const ARGON2 = { memory: 19_456, passes: 2, parallelism: 1, tagLength: 32 } as const
const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/

export const MIN_PASSWORD = 12
export const MAX_PASSWORD = 128

export function checkPasswordPolicy(password: unknown): string {
  if (typeof password !== 'string') throw new WeakPasswordError("'password' must be a string")
  const n = [...password].length
  if (n < MIN_PASSWORD || n > MAX_PASSWORD) throw new WeakPasswordError(`a password has ${MIN_PASSWORD} to ${MAX_PASSWORD} characters`, { field: 'password' })
  return password
}

function derive(password: string, salt: Buffer, p: { memory: number; passes: number; parallelism: number; tagLength: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    argon2('argon2id', { message: Buffer.from(password.normalize('NFKC'), 'utf8'), nonce: salt, ...p }, (err, key) => (err ? reject(err) : resolve(Buffer.from(key))))
  })
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '')

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16)
  const tag = await derive(password, salt, ARGON2)
  return `$argon2id$v=19$m=${ARGON2.memory},t=${ARGON2.passes},p=${ARGON2.parallelism}$${b64(salt)}$${b64(tag)}`
}

/** True when `password` matches `phc`; a malformed hash never matches. */
export async function verifyPassword(password: string, phc: string): Promise<boolean> {
  const m = PHC.exec(phc)
  if (!m) return false
  const salt = Buffer.from(m[4]!, 'base64')
  const want = Buffer.from(m[5]!, 'base64')
  const got = await derive(password, salt, { memory: Number(m[1]), passes: Number(m[2]), parallelism: Number(m[3]), tagLength: want.length })
  return got.length === want.length && timingSafeEqual(got, want)
}

/** A hash of nothing anyone knows: verified against when the account does not exist, so both take as long. */
let decoy: Promise<string> | undefined
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword(randomBytes(24).toString('base64'))
  return decoy
}
