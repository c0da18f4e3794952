// Secret delivery on the wire (spec/secrets.md): the actor, its behaviors, and what each carries.
export const SECRETS_ACTOR = 'secrets'

export const SecretsBehavior = {
  /** A provider starting a contract's instance asks its orchestrator: SecretFetch -> { secrets: SealedSecret[] }. */
  fetch: '/noir/secrets/fetch',
  /** The orchestrator asks a provider to start a replica again (its secrets were rotated): `{ contractId }` -> `{ restarted }`. */
  restart: '/noir/secrets/restart',
} as const

export interface SecretFetch { contractId: string; names: string[] }

/** One secret sealed to the provider (identity/sealed-box.ts), bound to secretAad(...). */
export interface SealedSecret { name: string; version: number; box: string }

/** What the orchestrating node asks its secret broker (the gateway), through the local API. */
export interface SecretRequest { id: string; deploymentId: string; contractId: string; provider: string; names: string[] }

/** The broker's answer: the sealed secrets, a refusal, or `unknown` (not a deployment it made: the node's own config answers). */
export type SecretAnswer = { secrets: SealedSecret[] } | { error: { name: string; message: string } } | { unknown: true }

export const SECRET_NAME = /^[A-Za-z0-9_.-]{1,128}$/
export const MAX_SECRETS = 64

/**
 * The associated data a secret is sealed with: the contract (so the allocation) and the node it is for, the
 * name and the version. A box replayed to another contract, node or name does not open.
 */
export function secretAad(contractId: string, providerDid: string, name: string, version: number): string {
  return `noir:secret:v1\n${contractId}\n${providerDid}\n${name}\n${version}`
}

/** What the appliance runtime asks when it starts an instance whose workload names secrets. */
export interface ProviderSecrets {
  /** The values by name, opened in memory; SecretRefusedError / SecretUnavailableError otherwise. */
  fetch(o: { contractId: string; consumer: string; deploymentId: string; names: string[] }): Promise<Record<string, string>>
}
