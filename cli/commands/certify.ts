// `noir owner certify NODE_DID` and `noir core certify NODE_DID`: node certificates (spec/trust.md "Owner
// certification", "The core pool"), signed with this home's key (the owner's, or the operator's root). The
// output is the config.json section the node is given: `{ "owner": { "certificate": ... } }` or `{ "core": ... }`.
// `noir owner revoke NODE_DID` and `noir core revoke NODE_DID` sign a revocation of every such certificate
// issued so far (spec/trust.md "Revoking a certificate"); `--publish HOME` hands it to the daemon of that home,
// which keeps it and spreads it on the mesh.
import { parseArgs } from 'node:util'
import { CORE_ABILITY, OWNER_ABILITY, signNodeCertificate, type NodeCertAbility } from '../../actors/placement/node-certificate.ts'
import { signCertRevocation } from '../../actors/placement/cert-revocation.ts'
import { ApiClient } from '../api-client.ts'
import { printJson, printLine, UsageError, type Command, type CommandContext } from '../command.ts'
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

async function revoke(ctx: CommandContext, argv: string[], ability: NodeCertAbility, usage: string): Promise<number> {
  let r: { values: { reason?: string; publish?: string }; positionals: string[] }
  try {
    r = parseArgs({ args: argv, options: { reason: { type: 'string' }, publish: { type: 'string' } }, allowPositionals: true, strict: true }) as typeof r
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : String(err)} (usage: ${usage})`)
  }
  if (r.positionals.length !== 1) throw new UsageError(`expected NODE_DID (usage: ${usage})`)
  const id = await identity()
  const node = r.positionals[0]!
  if (!id.isDidKey(node)) throw new UsageError(`NODE_DID must be an Ed25519 did:key: ${JSON.stringify(node.slice(0, 100))}`)
  if (r.values.reason !== undefined && r.values.reason.length > 200) throw new UsageError('--reason is at most 200 characters')
  if (!id.Keystore.exists(ctx.home)) id.Keystore.publicDid(ctx.home) // throws NoIdentityError with the hint
  const key = await id.Keystore.load(ctx.home, await id.passphraseFrom(ctx.env))
  const revocation = signCertRevocation(key, { ability, node, ...(r.values.reason !== undefined ? { reason: r.values.reason } : {}) })
  if (r.values.publish === undefined) {
    printJson(ctx, { revocation })
    return 0
  }
  const answer = await ApiClient.forHome(r.values.publish).post<{ added: boolean }>('/v1/certificates/revocations', { revocation })
  if (ctx.json) printJson(ctx, { ...answer, revocation })
  else printLine(ctx, `revoked every ${ability} certificate of ${node} signed by ${key.did} until now; ${answer.added ? 'handed to' : 'already held by'} the node at ${r.values.publish}, which spreads it on the mesh`)
  return 0
}

export const ownerRevokeCommand: Command = {
  path: ['owner', 'revoke'],
  summary: 'revoke the owner certificates you gave a node (signed with this home\'s key)',
  usage: `Usage: noir owner revoke NODE_DID [--reason TEXT] [--publish NODE_HOME] [--json]

Signs a revocation of every owner certificate (${OWNER_ABILITY}) this home's DID gave NODE_DID until now: nodes
that hold it treat NODE_DID as its own owner again (constraints.owners, spreading). Without --publish it prints
{ revocation } (POST it to any node: /v1/certificates/revocations); with --publish the daemon of NODE_HOME keeps
it and spreads it on the mesh (noir/cert-revocation/v1), again every minute. Certifying the node again later
(noir owner certify) gives it a certificate the revocation does not cover.`,
  run: (ctx, argv) => revoke(ctx, argv, OWNER_ABILITY, 'noir owner revoke NODE_DID [--reason TEXT] [--publish NODE_HOME]'),
}

export const coreRevokeCommand: Command = {
  path: ['core', 'revoke'],
  summary: 'revoke the core-membership certificates this root gave a node',
  usage: `Usage: noir core revoke NODE_DID [--reason TEXT] [--publish NODE_HOME] [--json]

Signs a revocation of every core-membership certificate (${CORE_ABILITY}) this home's DID gave NODE_DID until
now: orchestrators that hold it no longer place constraints.core work there. --publish as for noir owner revoke.`,
  run: (ctx, argv) => revoke(ctx, argv, CORE_ABILITY, 'noir core revoke NODE_DID [--reason TEXT] [--publish NODE_HOME]'),
}
