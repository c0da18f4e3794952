// `noir owner certify NODE_DID` and `noir core certify NODE_DID`: node certificates (spec/trust.md "Owner
// certification", "The core pool"), signed with this home's key (the owner's, or the operator's root). The
// output is the config.json section the node is given: `{ "owner": { "certificate": ... } }` or `{ "core": ... }`.
// `noir owner revoke NODE_DID` and `noir core revoke NODE_DID` sign a revocation of every such certificate
// issued so far (spec/trust.md "Revoking a certificate"); `--publish HOME` hands it to the daemon of that home,
// which keeps it and spreads it on the mesh.
import type { ParseArgsOptionsConfig } from 'node:util'
import { CORE_ABILITY, OWNER_ABILITY, signNodeCertificate, type NodeCertAbility } from '../../actors/placement/node-certificate.ts'
import { signCertRevocation } from '../../actors/placement/cert-revocation.ts'
import { ApiClient } from '../api-client.ts'
import { parseCommandArgs, printJson, printLine, UsageError, type Command, type CommandArgs, type CommandContext } from '../command.ts'
import type { NodeKey } from '../../identity/keys.ts'
import { parseDuration } from './cap.ts'

const identity = (): Promise<typeof import('../../identity/index.ts')> => import('../../identity/index.ts')

/**
 * What both commands read first: their flags (parseCommandArgs), the one NODE_DID, the flags' own checks
 * (`read`, before any passphrase is asked), then this home's key.
 */
async function signerAndNode<T>(ctx: CommandContext, argv: string[], options: ParseArgsOptionsConfig, usage: string, read: (values: CommandArgs['values']) => T): Promise<{ read: T; node: string; key: NodeKey }> {
  const r = parseCommandArgs(argv, options, { min: 1, max: 1, usage: `expected NODE_DID (usage: ${usage})` })
  const id = await identity()
  const node = r.positionals[0]!
  if (!id.isDidKey(node)) throw new UsageError(`NODE_DID must be an Ed25519 did:key: ${JSON.stringify(node.slice(0, 100))}`)
  const flags = read(r.values)
  if (!id.Keystore.exists(ctx.home)) id.Keystore.publicDid(ctx.home) // throws NoIdentityError with the hint
  return { read: flags, node, key: await id.Keystore.load(ctx.home, await id.passphraseFrom(ctx.env)) }
}

async function certify(ctx: CommandContext, argv: string[], ability: NodeCertAbility, section: 'owner' | 'core', usage: string): Promise<number> {
  const { read: ttlMs, node, key } = await signerAndNode(ctx, argv, { ttl: { type: 'string' } }, usage, (v) => parseDuration(typeof v.ttl === 'string' ? v.ttl : '30d'))
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
  const { read, node, key } = await signerAndNode(ctx, argv, { reason: { type: 'string' }, publish: { type: 'string' } }, usage, (v) => {
    if (typeof v.reason === 'string' && v.reason.length > 200) throw new UsageError('--reason is at most 200 characters')
    return { why: typeof v.reason === 'string' ? v.reason : undefined, publish: typeof v.publish === 'string' ? v.publish : undefined }
  })
  const { why, publish } = read
  const revocation = signCertRevocation(key, { ability, node, ...(why !== undefined ? { reason: why } : {}) })
  if (publish === undefined) {
    printJson(ctx, { revocation })
    return 0
  }
  const answer = await ApiClient.forHome(publish).post<{ added: boolean }>('/v1/certificates/revocations', { revocation })
  if (ctx.json) printJson(ctx, { ...answer, revocation })
  else printLine(ctx, `revoked every ${ability} certificate of ${node} signed by ${key.did} until now; ${answer.added ? 'handed to' : 'already held by'} the node at ${publish}, which spreads it on the mesh`)
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
