// Admission by source address (spec/wire.md "Source addresses"): fresh peer ids cost nothing, addresses do.
// A source address (IPv4 /32, IPv6 /64) is refused while quarantined (a peer from it broke the protocol) and
// may bring at most `maxNewIdentitiesPerMinute` peer ids it had not brought before in a minute; addresses the
// operator allows (loopback by default: local tools and tests) are exempt. Tables are bounded.
import { isIP } from 'node:net'

export interface AddressAdmissionOptions {
  /** New peer ids one address may bring per minute. Default 10. */
  maxNewIdentitiesPerMinute?: number
  /** Exempt prefixes: `127.0.0.0/8`-style IPv4 CIDRs, or IPv6 prefixes written as `::1/128`. Default loopback. */
  allow?: readonly string[]
  now?: () => number
}

export const DEFAULT_ALLOW = ['127.0.0.0/8', '::1/128']
const MAX_ADDRESSES = 10_000

/** The key an address is judged by: the IPv4 address, or the IPv6 /64 prefix. */
export function sourceKey(ip: string): string {
  if (isIP(ip) === 4) return ip
  if (isIP(ip) === 6) return `${expand6(ip).slice(0, 4).join(':')}::/64`
  return ip
}

function expand6(ip: string): string[] {
  const [head, tail] = ip.split('::') as [string, string | undefined]
  const h = head ? head.split(':') : []
  const t = tail !== undefined ? (tail ? tail.split(':') : []) : []
  const fill = tail !== undefined ? Array(8 - h.length - t.length).fill('0') : []
  return [...h, ...fill, ...t].map((x) => x.toLowerCase().replace(/^0+(?=.)/, ''))
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/') as [string, string | undefined]
  const bits = Number(bitsText ?? (isIP(base) === 4 ? 32 : 128))
  if (isIP(ip) === 4 && isIP(base) === 4) {
    const n = (s: string): number => s.split('.').reduce((a, x) => (a << 8) + Number(x), 0) >>> 0
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
    return (n(ip) & mask) === (n(base) & mask)
  }
  if (isIP(ip) === 6 && isIP(base) === 6) {
    const a = expand6(ip).map((x) => parseInt(x, 16))
    const b = expand6(base).map((x) => parseInt(x, 16))
    for (let i = 0; i < 8 && bits > i * 16; i++) {
      const m = bits >= (i + 1) * 16 ? 0xffff : (0xffff << (16 - (bits - i * 16))) & 0xffff
      if ((a[i]! & m) !== (b[i]! & m)) return false
    }
    return true
  }
  return false
}

/** Whether `ip` lies in one of `prefixes` (CIDRs as in `AddressAdmissionOptions.allow`). */
export function allowedBy(prefixes: readonly string[]): (ip: string) => boolean {
  return (ip) => prefixes.some((c) => inCidr(ip, c))
}

export class AddressAdmission {
  readonly #max: number
  readonly #allow: readonly string[]
  readonly #exempt: (ip: string) => boolean
  readonly #now: () => number
  readonly #quarantined = new Map<string, number>()
  /** Per source: the peer ids it brought, with when each was first seen (within the last minute). */
  readonly #identities = new Map<string, Map<string, number>>()
  /** Refusals by reason (status, tests). */
  readonly refused = { quarantined: 0, 'new-identities': 0 }

  constructor(o: AddressAdmissionOptions = {}) {
    this.#max = o.maxNewIdentitiesPerMinute ?? 10
    this.#allow = o.allow ?? DEFAULT_ALLOW
    this.#exempt = allowedBy(this.#allow)
    this.#now = o.now ?? Date.now
  }

  exempt(ip: string): boolean {
    return this.#exempt(ip)
  }

  /** Refuses the address (its /64 for IPv6) for `ms`. */
  quarantine(ip: string, ms: number): void {
    if (ms <= 0 || this.exempt(ip)) return
    if (this.#quarantined.size >= MAX_ADDRESSES) this.#quarantined.delete(this.#quarantined.keys().next().value!)
    this.#quarantined.set(sourceKey(ip), this.#now() + ms)
  }

  /** Before the handshake: whether a connection from `ip` is refused (quarantined). */
  deniesAddress(ip: string): boolean {
    if (this.exempt(ip)) return false
    const until = this.#quarantined.get(sourceKey(ip))
    if (until === undefined) return false
    if (until > this.#now()) {
      this.refused.quarantined++
      return true
    }
    this.#quarantined.delete(sourceKey(ip))
    return false
  }

  /** After the handshake: whether `peer` from `ip` is one identity too many for that address this minute. */
  deniesIdentity(ip: string, peer: string): boolean {
    if (this.exempt(ip)) return false
    const key = sourceKey(ip)
    const now = this.#now()
    let seen = this.#identities.get(key)
    if (!seen) {
      if (this.#identities.size >= MAX_ADDRESSES) this.#identities.delete(this.#identities.keys().next().value!)
      this.#identities.set(key, (seen = new Map()))
    }
    for (const [p, at] of seen) if (now - at >= 60_000) seen.delete(p)
    if (seen.has(peer)) return false
    if (seen.size >= this.#max) {
      this.refused['new-identities']++
      return true
    }
    seen.set(peer, now)
    return false
  }

  limits(): { maxNewIdentitiesPerMinute: number; allow: readonly string[]; quarantinedAddresses: number; refused: { quarantined: number; 'new-identities': number } } {
    return { maxNewIdentitiesPerMinute: this.#max, allow: this.#allow, quarantinedAddresses: this.#quarantined.size, refused: { ...this.refused } }
  }
}
