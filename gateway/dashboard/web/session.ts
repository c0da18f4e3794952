// Who is signed in, as the gateway says (GET /v1/account with the HttpOnly session cookie): the page never
// holds the session token itself.
import { ApiError, call } from '../../../appliance/web/kit/api.ts'

export interface Account { id: string; email: string; verified: boolean; totp: boolean; recoveryCodesLeft?: number }

let current: Account | null = null

export function account(): Account | null {
  return current
}

/** Asks the gateway; null when there is no session. */
export async function refreshAccount(): Promise<Account | null> {
  try {
    current = await call<Account>('GET', '/v1/account')
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) current = null
    else throw err
  }
  return current
}

export function forget(): void {
  current = null
}
