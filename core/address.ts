// Actor addresses: the node's DID followed by the actor's path, e.g. `did:key:z6Mk.../orchestrator` or
// `did:key:z6Mk.../alloc/7f3a` (a child under its parent). identity/ owns the format (parseAddress,
// formatAddress); here: actor names, and paths as the kernel keeps them (without the leading slash).
import { InvalidAddressError } from '../identity/index.ts'

const NAME = /^[A-Za-z0-9._~:@+-]{1,128}$/

/** Checks one actor name (one path segment) and returns it. Throws InvalidAddressError. */
export function checkName(name: string): string {
  if (typeof name !== 'string' || !NAME.test(name) || name === '.' || name === '..') {
    throw new InvalidAddressError(`an actor name is 1-128 of A-Z a-z 0-9 . _ ~ : @ + -, not '.' or '..': ${JSON.stringify(String(name).slice(0, 200))}`)
  }
  return name
}

/** `did` + `/` + `path` (the bare DID for the empty path). */
export function actorAddress(did: string, path: string): string {
  return path === '' ? did : `${did}/${path}`
}
