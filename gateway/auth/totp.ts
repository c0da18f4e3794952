// TOTP (RFC 6238) through otplib: SHA-1, 6 digits, 30 s steps, one step of tolerance either side. A code is
// accepted once: the step it was accepted at is kept, and a code of that step or an earlier one is refused
// (ASVS V6.5: a one-time password is used once).
import { generateSecret, generateURI, verify } from 'otplib'

export const TOTP_PERIOD = 30

export function newTotpSecret(): string {
  return generateSecret({ length: 20 })
}

export function totpUri(secret: string, email: string): string {
  return generateURI({ issuer: 'NoirLedger', label: email, secret })
}

/** The time step the code matches (within one step of now), or undefined. */
export async function matchTotp(secret: string, code: unknown, nowMs: number): Promise<number | undefined> {
  if (typeof code !== 'string' || !/^[0-9]{6}$/.test(code)) return undefined
  const epoch = Math.floor(nowMs / 1000)
  const r = await verify({ secret, token: code, epoch, epochTolerance: TOTP_PERIOD })
  if (!r.valid) return undefined
  const delta = 'delta' in r && typeof r.delta === 'number' ? r.delta : 0
  return Math.floor(epoch / TOTP_PERIOD) + delta
}
