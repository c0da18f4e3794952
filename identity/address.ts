// An actor address is the node's DID plus a path: `did:key:z6Mk.../alloc/7f3a` (spec/identity.md).
// The node itself has the empty path. Path segments are non-empty and use unreserved URL characters.
import { isDidKey } from './did-key.ts'
import { InvalidAddressError } from './errors.ts'
import { BoundedMap } from './lru.ts'

export const MAX_ADDRESS_LENGTH = 512
const SEGMENT = /^[A-Za-z0-9._~:@+-]+$/

export interface ParsedAddress {
  did: string
  /** '' for the node itself, else '/seg/seg...' */
  path: string
}

function checkPath(path: string, address: string): void {
  if (path === '') return
  if (path[0] !== '/') throw new InvalidAddressError(`address path must start with '/': ${JSON.stringify(address)}`)
  const segments = path.slice(1).split('/')
  for (const s of segments) {
    if (!SEGMENT.test(s) || s === '.' || s === '..') {
      throw new InvalidAddressError(`address path segments are non-empty [A-Za-z0-9._~:@+-], not '.'/'..': ${JSON.stringify(address.slice(0, 200))}`)
    }
  }
}

// Decoding base58 and matching segments costs microseconds; addresses repeat, so remember parsed ones. The
// last few are compared first: an envelope's addresses are fresh strings (from JSON.parse), and comparing
// one with a remembered address is cheaper than hashing it for the map (a stream carries the same few).
const parsed = new BoundedMap<string, Readonly<ParsedAddress>>(8192)
const RECENT = 4
const recentAddresses: string[] = []
const recentParsed: Readonly<ParsedAddress>[] = []
let recentNext = 0

export function parseAddress(address: string): Readonly<ParsedAddress> {
  for (let i = 0; i < recentAddresses.length; i++) {
    if (recentAddresses[i] === address) return recentParsed[i]!
  }
  const hit = parsed.get(address)
  if (hit) {
    remember(address, hit)
    return hit
  }
  if (typeof address !== 'string') throw new InvalidAddressError('an address is a string')
  if (address.length > MAX_ADDRESS_LENGTH) throw new InvalidAddressError(`address longer than ${MAX_ADDRESS_LENGTH} characters`)
  if (!address.startsWith('did:key:')) throw new InvalidAddressError(`address must start with a did:key: ${JSON.stringify(address.slice(0, 200))}`)
  const slash = address.indexOf('/')
  const did = slash < 0 ? address : address.slice(0, slash)
  const path = slash < 0 ? '' : address.slice(slash)
  if (!isDidKey(did)) throw new InvalidAddressError(`address does not start with an Ed25519 did:key: ${JSON.stringify(address.slice(0, 200))}`)
  checkPath(path, address)
  // shared by every caller (read-only): parsing is on each message's path, a copy per call was garbage
  const result: Readonly<ParsedAddress> = Object.freeze({ did, path })
  parsed.set(address, result)
  remember(address, result)
  return result
}

function remember(address: string, result: Readonly<ParsedAddress>): void {
  recentAddresses[recentNext] = address
  recentParsed[recentNext] = result
  recentNext = (recentNext + 1) % RECENT
}

export function formatAddress(did: string, path: string): string {
  if (!isDidKey(did)) throw new InvalidAddressError(`not an Ed25519 did:key: ${JSON.stringify(String(did).slice(0, 200))}`)
  const address = did + path
  checkPath(path, address)
  if (address.length > MAX_ADDRESS_LENGTH) throw new InvalidAddressError(`address longer than ${MAX_ADDRESS_LENGTH} characters`)
  return address
}

/** True when `address` is well-formed. */
export function isAddress(address: string): boolean {
  try {
    parseAddress(address)
    return true
  } catch {
    return false
  }
}
