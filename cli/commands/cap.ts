// `noir cap issue | delegate | verify | revoke`: capability tokens (spec/capabilities.md).
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'
import type { Ability, CapabilityClaims, NodeKey, Revocation, RevocationStore } from '../../identity/index.ts'
import type { KvRevocationStore } from '../../core/revocation-store.ts'
import { ApiClient } from '../api-client.ts'
import { processAlive, readApiFile } from '../../appliance/daemon/api-file.ts'
import { printJson, printLine, UsageError, type Command, type CommandContext } from '../command.ts'

// identity/ (libp2p keys, did-jwt) and the level store are imported when a command runs, so `noir --help` and other commands stay fast.
type Identity = typeof import('../../identity/index.ts')
const identity = (): Promise<Identity> => import('../../identity/index.ts')

type Options = ParseArgsOptionsConfig

function parse(argv: string[], options: Options, usage: string, positionals: number): { values: Record<string, unknown>; positionals: string[] } {
  let r: { values: Record<string, unknown>; positionals: string[] }
  try {
    r = parseArgs({ args: argv, options, allowPositionals: positionals > 0, strict: true }) as typeof r
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : String(err)} (usage: ${usage})`)
  }
  if (r.positionals.length !== positionals) throw new UsageError(`expected ${positionals} argument(s) (usage: ${usage})`)
  return r
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** '90s', '15m', '1h', '7d', '500ms'; a bare number is seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim())
  if (!m) throw new UsageError(`bad duration ${JSON.stringify(text)} (use e.g. 30s, 15m, 1h, 7d)`)
  const ms = Math.round(Number(m[1]) * UNITS[m[2] ?? 's']!)
  if (!(ms > 0)) throw new UsageError(`duration must be positive: ${JSON.stringify(text)}`)
  return ms
}

function audience(id: Identity, values: Record<string, unknown>): string {
  const to = values.to
  if (typeof to !== 'string') throw new UsageError('--to DID is required')
  if (!id.isDidKey(to)) throw new UsageError(`--to must be an Ed25519 did:key: ${JSON.stringify(to.slice(0, 100))}`)
  return to
}

function abilities(values: Record<string, unknown>): Ability[] {
  const can = values.can
  if (!Array.isArray(can) || can.length === 0) throw new UsageError('at least one --can PATH is required')
  return can.map((c) => ({ can: String(c) }))
}

async function loadKey(id: Identity, ctx: CommandContext): Promise<NodeKey> {
  if (!id.Keystore.exists(ctx.home)) id.Keystore.publicDid(ctx.home) // throws NoIdentityError with the hint
  return id.Keystore.load(ctx.home, await id.passphraseFrom(ctx.env))
}

function trustedRoots(id: Identity, ctx: CommandContext): string[] {
  const roots: string[] = []
  if (id.Keystore.exists(ctx.home)) roots.push(id.Keystore.publicDid(ctx.home))
  const configPath = join(ctx.home, 'config.json')
  if (existsSync(configPath)) {
    let config: unknown
    try {
      config = JSON.parse(readFileSync(configPath, 'utf8'))
    } catch {
      throw new UsageError(`${configPath} is not valid JSON`)
    }
    const extra = (config as { trustedRoots?: unknown } | null)?.trustedRoots
    if (extra !== undefined) {
      if (!Array.isArray(extra) || !extra.every((d) => typeof d === 'string' && id.isDidKey(d))) {
        throw new UsageError(`${configPath}: trustedRoots must be a list of did:key strings`)
      }
      roots.push(...(extra as string[]))
    }
  }
  return roots
}

function printToken(ctx: CommandContext, token: string, info: { issuer: string; audience: string; abilities: Ability[]; expiresAt: number }): void {
  if (ctx.json) return printJson(ctx, { token, ...info, expiresAt: new Date(info.expiresAt).toISOString() })
  printLine(ctx, token)
}

export const capIssue: Command = {
  path: ['cap', 'issue'],
  summary: 'issue a capability token signed by this node',
  usage: `Usage: noir cap issue --to DID --can PATH [--can PATH...] [--ttl 1h] [--json]

Issues a capability (a did-jwt JWT) from this node's key to DID, granting each behavior path prefix
given with --can (/noir/deploy covers /noir/deploy/status). --ttl: lifetime (30s, 15m, 1h, 7d; default 1h).
Prints the token.`,
  async run(ctx, argv) {
    const { values } = parse(argv, { to: { type: 'string' }, can: { type: 'string', multiple: true }, ttl: { type: 'string' } }, 'noir cap issue --to DID --can PATH [--ttl 1h]', 0)
    const id = await identity()
    const aud = audience(id, values)
    const att = abilities(values)
    const ttlMs = parseDuration(typeof values.ttl === 'string' ? values.ttl : '1h')
    const key = await loadKey(id, ctx)
    const now = Date.now()
    const token = await id.issueCapability(key, { audience: aud, abilities: att, ttlMs, now })
    printToken(ctx, token, { issuer: key.did, audience: aud, abilities: att, expiresAt: Math.floor((now + ttlMs) / 1000) * 1000 })
  },
}

export const capDelegate: Command = {
  path: ['cap', 'delegate'],
  summary: 'delegate (part of) a capability this node holds',
  usage: `Usage: noir cap delegate TOKEN --to DID --can PATH [--can PATH...] [--ttl 30m] [--json]

Delegates TOKEN (whose audience must be this node) to DID, narrowed to the given paths. Without --ttl the
delegation expires with its parent; it may never outlive it or widen it. Prints the new token.`,
  async run(ctx, argv) {
    const { values, positionals } = parse(argv, { to: { type: 'string' }, can: { type: 'string', multiple: true }, ttl: { type: 'string' } }, 'noir cap delegate TOKEN --to DID --can PATH [--ttl 30m]', 1)
    const parent = positionals[0]!
    const id = await identity()
    const aud = audience(id, values)
    const att = abilities(values)
    const ttlMs = typeof values.ttl === 'string' ? parseDuration(values.ttl) : undefined
    const key = await loadKey(id, ctx)
    const token = await id.delegateCapability(key, parent, ttlMs === undefined ? { audience: aud, abilities: att } : { audience: aud, abilities: att, ttlMs })
    const leaf = id.decodeCapabilityChain(token)[0]!
    printToken(ctx, token, { issuer: key.did, audience: aud, abilities: att, expiresAt: leaf.exp * 1000 })
  },
}

export const capVerify: Command = {
  path: ['cap', 'verify'],
  summary: 'verify a capability chain against this node\'s trusted roots',
  usage: `Usage: noir cap verify TOKEN [--audience DID] [--can PATH] [--json]

Verifies every token of the chain (signatures, audience links, narrowing, lifetimes, revocations in
$HOME/revocations) against the trusted roots: this node's own DID plus "trustedRoots" in $HOME/config.json.
Prints the chain, root first. Exits 1 when the token is not valid.`,
  async run(ctx, argv) {
    const { values, positionals } = parse(argv, { audience: { type: 'string' }, can: { type: 'string' } }, 'noir cap verify TOKEN [--audience DID] [--can PATH]', 1)
    const token = positionals[0]!
    const id = await identity()
    const roots = trustedRoots(id, ctx)
    // The running daemon holds the revocation store open: ask it for the list then.
    const { store, close } = daemonRuns(ctx.home) ? await daemonRevocations(id, ctx.home) : await homeRevocations(ctx.home)
    try {
      const verifier = new id.CapabilityVerifier({ trustedRoots: roots, revocations: store })
      const o: { audience?: string; ability?: string } = {}
      if (typeof values.audience === 'string') o.audience = values.audience
      if (typeof values.can === 'string') o.ability = values.can
      let links: CapabilityClaims[] = []
      try {
        links = id.decodeCapabilityChain(token).reverse()
      } catch (err) {
        if (!(err instanceof id.MalformedCapabilityError)) throw err
      }
      try {
        const v = await verifier.verify(token, o)
        if (ctx.json) {
          printJson(ctx, { valid: true, root: v.root, issuer: v.issuer, audience: v.audience, abilities: v.abilities, expiresAt: new Date(v.expiresAt).toISOString(), chain: links.map(linkView) })
        } else {
          printLine(ctx, `valid: granted by trusted root ${v.root}`)
          printChain(ctx, links)
        }
        return 0
      } catch (err) {
        if (!(err instanceof id.IdentityError)) throw err
        if (ctx.json) {
          printJson(ctx, { valid: false, error: { name: err.name, code: err.code, message: err.message }, chain: links.map(linkView) })
        } else {
          printChain(ctx, links)
          ctx.stderr.write(`noir: invalid capability: ${err.name}: ${err.message.split('\n')[0]}\n`)
        }
        return 1
      }
    } finally {
      await close()
    }
  },
}

function linkView(l: CapabilityClaims): { issuer: string; audience: string; abilities: Ability[]; expiresAt: string } {
  return { issuer: l.iss, audience: l.aud, abilities: l.att, expiresAt: new Date(l.exp * 1000).toISOString() }
}

function printChain(ctx: CommandContext, links: CapabilityClaims[]): void {
  links.forEach((l, i) => {
    const abil = l.att.map((a) => a.can + (a.limits ? JSON.stringify(a.limits) : '')).join(', ')
    printLine(ctx, `  ${i + 1}. ${l.iss}`)
    printLine(ctx, `     -> ${l.aud}`)
    printLine(ctx, `     can ${abil}; expires ${new Date(l.exp * 1000).toISOString()}`)
  })
}

export const capRevoke: Command = {
  path: ['cap', 'revoke'],
  summary: 'revoke a capability this node issued (anywhere in its chain)',
  usage: `Usage: noir cap revoke TOKEN [--json]

Signs a revocation of TOKEN with this node's key (only an issuer in the token's chain may revoke it). When
the node's daemon runs, it does so through the daemon's API: the daemon honours it at once and announces it
on the mesh (noir/revocation/v1), where nodes that trust the token's root honour it too. Otherwise it is
stored in $HOME/revocations, which the daemon reads when it starts and \`noir cap verify\` consults.`,
  async run(ctx, argv) {
    const { positionals } = parse(argv, {}, 'noir cap revoke TOKEN', 1)
    const token = positionals[0]!
    const id = await identity()
    let r: Revocation
    if (daemonRuns(ctx.home)) {
      r = (await ApiClient.forHome(ctx.home).post<{ revocation: Revocation }>('/v1/capabilities/revoke', { token })).revocation
    } else {
      const key = await loadKey(id, ctx)
      r = id.createRevocation(key, token)
      const expiresAt = Math.min(...id.decodeCapabilityChain(token).map((c) => c.exp * 1000))
      const { store, close } = await homeRevocations(ctx.home)
      try {
        await store.add(r, { expiresAt })
      } finally {
        await close()
      }
    }
    if (ctx.json) printJson(ctx, r)
    else printLine(ctx, `revoked token sha256 ${r.token}`)
  },
}

function daemonRuns(home: string): boolean {
  const info = readApiFile(home)
  return info !== undefined && processAlive(info.pid)
}

async function daemonRevocations(id: Identity, home: string): Promise<{ store: RevocationStore; close(): Promise<void> }> {
  const { revocations } = await ApiClient.forHome(home).get<{ revocations: Revocation[] }>('/v1/revocations')
  const store = new id.MemoryRevocationStore()
  for (const r of revocations) await store.add(r)
  return { store, close: async () => {} }
}

/** The revocations kept in the home (NOIR_HOME/revocations, level), open until `close`. */
async function homeRevocations(home: string): Promise<{ store: KvRevocationStore; close(): Promise<void> }> {
  const [{ LevelKvStore }, { KvRevocationStore }] = await Promise.all([import('../../core/level-kv-store.ts'), import('../../core/revocation-store.ts')])
  const kv = await LevelKvStore.open(join(home, 'revocations'))
  try {
    return { store: await KvRevocationStore.open(kv), close: () => kv.close() }
  } catch (err) {
    await kv.close()
    throw err
  }
}

export const capCommands: Command[] = [capIssue, capDelegate, capVerify, capRevoke]
