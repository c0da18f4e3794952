// `noir owner certify NODE_DID` and `noir core certify NODE_DID`: node certificates (spec/trust.md "Owner
// certification", "The core pool"), signed with this home's key (the owner's, or the operator's root). The
// output is the config.json section the node is given: `{ "owner": { "certificate": ... } }` or `{ "core": ... }`.
import { parseArgs } from 'node:util'
import { CORE_ABILITY, OWNER_ABILITY, signNodeCertificate, type NodeCertAbility } from '../../actors/placement/node-certificate.ts'
import { printJson, UsageError, type Command, type CommandContext } from '../command.ts'
import { parseDuration } from './cap.ts'

const identity = (): Promise<typeof import('../../identity/index.ts')> => import('../../identity/index.ts')

async function certify(ctx: CommandContext, argv: string[], ability: NodeCertAbility, section: 'owner' | 'core', usage: string): Promise<number> {
  let r: { values: { ttl?: string }; positionals: string[] }
  try {
    r = parseArgs({ args: argv, options: { ttl: { type: 'string' } }, allowPositionals: true, strict: true }) as typeof r
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : String(err)} (usage: ${usage})`)
  }
  if (r.positionals.length !== 1) throw new UsageError(`expected NODE_DID (usage: ${usage})`)
  const id = await identity()
  const node = r.positionals[0]!
  if (!id.isDidKey(node)) throw new UsageError(`NODE_DID must be an Ed25519 did:key: ${JSON.stringify(node.slice(0, 100))}`)
  const ttlMs = parseDuration(r.values.ttl ?? '30d')
  if (!id.Keystore.exists(ctx.home)) id.Keystore.publicDid(ctx.home) // throws NoIdentityError with the hint
  const key = await id.Keystore.load(ctx.home, await id.passphraseFrom(ctx.env))
  const certificate = signNodeCertificate(key, { ability, node, ttlMs })
  // text and --json alike: the JSON section itself, ready to merge into the node's config.json
  printJson(ctx, { [section]: { certificate } })
  return 0
}

export const ownerCertifyCommand: Command = {
  path: ['owner', 'certify'],
  summary: 'certify a node as yours (signed with this home\'s key): prints its config.json `owner` section',
  usage: `Usage: noir owner certify NODE_DID [--ttl 30d] [--json]

Signs a certificate (ability ${OWNER_ABILITY}) naming NODE_DID as a node of this home's DID, the owner. Given to
the node in config.json, it is carried in its bids: placement believes the node's owner (spreading by owner,
constraints.owners) only with it. --ttl: lifetime (default 30d, at most 366d).`,
  run: (ctx, argv) => certify(ctx, argv, OWNER_ABILITY, 'owner', 'noir owner certify NODE_DID [--ttl 30d]'),
}

export const coreCertifyCommand: Command = {
  path: ['core', 'certify'],
  summary: 'admit a node to the core pool (signed with this home\'s key, a trusted root): prints its config.json `core` section',
  usage: `Usage: noir core certify NODE_DID [--ttl 30d] [--json]

Signs a core-membership certificate (ability ${CORE_ABILITY}) for NODE_DID. Orchestrators whose config.json
trustedRoots list this home's DID place \`constraints.core: true\` workloads only on nodes carrying one.`,
  run: (ctx, argv) => certify(ctx, argv, CORE_ABILITY, 'core', 'noir core certify NODE_DID [--ttl 30d]'),
}
