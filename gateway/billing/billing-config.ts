// The gateway's billing configuration (`noir gateway start --billing FILE`, spec/billing.md "Config"): a JSON
// file, every field checked, a wrong one refused with its name (never a silent default).
//   { "chain": { "rpcUrl", "contract", "startHeight", "depth"?, "decimals"?, "pollMs"? },
//     "policy": { "defaultHourlyPrice"?: µNLC per replica-hour (digits), "holdHours"? | "holdSeconds"? },
//     "meterMs"?, "releaseGraceMs"?, "fundsGraceMs"? }
import { InvalidRequestError } from '../errors.ts'
import type { ChainDeposits } from './deposits.ts'
import type { HoldPolicy } from './hold-size.ts'

export interface BillingConfig { chain?: ChainDeposits; policy?: Partial<HoldPolicy>; meterMs?: number; releaseGraceMs?: number; fundsGraceMs?: number }

const fail = (field: string, why: string): never => {
  throw new InvalidRequestError(`billing config: ${field} ${why}`, { field })
}
const only = (o: Record<string, unknown>, allowed: string[], at: string): void => {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(`${at}${k}`, 'is not a field')
}
const obj = (v: unknown, field: string): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(field, 'must be an object'))
const int = (v: unknown, field: string, min: number, max: number): number => (Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max ? (v as number) : fail(field, `must be a whole number from ${min} to ${max}`))

export function billingConfig(raw: unknown): BillingConfig {
  const c = obj(raw, '(the file)')
  only(c, ['chain', 'policy', 'meterMs', 'releaseGraceMs', 'fundsGraceMs'], '')
  const out: BillingConfig = {}
  if (c.chain !== undefined) {
    const ch = obj(c.chain, 'chain')
    only(ch, ['rpcUrl', 'contract', 'startHeight', 'depth', 'decimals', 'pollMs'], 'chain.')
    if (typeof ch.rpcUrl !== 'string' || !URL.canParse(ch.rpcUrl) || !/^https?:$/.test(new URL(ch.rpcUrl).protocol)) fail('chain.rpcUrl', 'must be an http(s) URL')
    if (typeof ch.contract !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(ch.contract)) fail('chain.contract', 'must be an address (0x and 40 hex digits)')
    const sh = ch.startHeight
    if (!(Number.isSafeInteger(sh) && (sh as number) >= 0) && !(typeof sh === 'string' && /^(0|[1-9][0-9]{0,19})$/.test(sh))) fail('chain.startHeight', 'must be a block number >= 0')
    out.chain = {
      rpcUrl: ch.rpcUrl as string, contract: ch.contract as `0x${string}`, startHeight: BigInt(sh as number | string),
      ...(ch.depth !== undefined ? { depth: int(ch.depth, 'chain.depth', 1, 10_000) } : {}),
      ...(ch.decimals !== undefined ? { decimals: int(ch.decimals, 'chain.decimals', 6, 36) } : {}),
      ...(ch.pollMs !== undefined ? { pollMs: int(ch.pollMs, 'chain.pollMs', 50, 3_600_000) } : {}),
    }
  }
  if (c.policy !== undefined) {
    const p = obj(c.policy, 'policy')
    only(p, ['defaultHourlyPrice', 'holdHours', 'holdSeconds'], 'policy.')
    out.policy = {}
    if (p.defaultHourlyPrice !== undefined) {
      const v = p.defaultHourlyPrice
      if (!(typeof v === 'string' && /^(0|[1-9][0-9]{0,15})$/.test(v)) && !(Number.isSafeInteger(v) && (v as number) >= 0)) fail('policy.defaultHourlyPrice', 'must be µNLC as digits')
      out.policy.defaultHourlyPrice = BigInt(v as string | number)
    }
    if (p.holdHours !== undefined && p.holdSeconds !== undefined) fail('policy.holdSeconds', 'and policy.holdHours say the same thing: give one')
    if (p.holdHours !== undefined) out.policy.holdSeconds = int(p.holdHours, 'policy.holdHours', 1, 24 * 31) * 3600
    if (p.holdSeconds !== undefined) out.policy.holdSeconds = int(p.holdSeconds, 'policy.holdSeconds', 1, 24 * 31 * 3600)
  }
  if (c.meterMs !== undefined) out.meterMs = int(c.meterMs, 'meterMs', 100, 3_600_000)
  if (c.releaseGraceMs !== undefined) out.releaseGraceMs = int(c.releaseGraceMs, 'releaseGraceMs', 0, 86_400_000)
  if (c.fundsGraceMs !== undefined) out.fundsGraceMs = int(c.fundsGraceMs, 'fundsGraceMs', 0, 31 * 86_400_000)
  return out
}
