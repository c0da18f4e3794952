// $NOIR_HOME/config.json: the node's settings. Written by `noir init` with defaults; `noir node start`
// flags override it for one run. Unknown fields are kept (other layers add their own sections).
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError } from './errors.ts'
import { DEFAULT_SEAL_WINDOW_MS } from '../../core/remote-contract.ts'
import { pricePolicyFrom } from '../../actors/placement/price.ts'
import { InvalidPricePolicyError } from '../../actors/errors.ts'
import { RELAY_LIMITS } from '../../p2p/host.ts'
import { rebalancePolicyFrom } from '../../actors/orchestrator/rebalancer.ts'

export interface NodeConfig {
  /** Multiaddrs to listen on. */
  listen: string[]
  /** Multiaddrs (with /p2p/<id>) of peers to join at start. */
  bootstrap: string[]
  /** Addresses to announce instead of the listen addresses (e.g. a public address behind a port forward). */
  announce: string[]
  /** Discover peers on the LAN with mDNS. */
  mdns: boolean
  /** Act as a circuit-relay-v2 server for nodes that cannot be dialled directly. */
  relay: boolean
  /** What one relayed connection may carry (when `relay`): seconds open, bytes each way. spec/wire.md "Relays". */
  relayLimits: { durationSeconds: number; dataBytes: number }
  /** DIDs whose capabilities this node accepts (its own DID is always trusted). */
  trustedRoots: string[]
  /** How often connected peers are pinged (latency; two missed pings close a dead connection), ms. */
  pingIntervalMs: number
  /** A frame on the actor wire must complete within this time once it starts arriving, ms. */
  frameTimeoutMs: number
  /**
   * When signatures of envelopes from directly authenticated peers are checked: 'concurrent' (on a worker
   * thread, while the envelope is delivered) or 'inline' (before delivery). spec/actors.md, "Signature checks".
   */
  signatureCheck: 'concurrent' | 'inline'
  /** How long a peer that sent a badly signed envelope is refused connections, ms (0: not at all). */
  quarantineMs: number
  /** Source-address prefixes exempt from address admission (CIDR; default loopback). spec/wire.md. */
  allowAddresses: string[]
  /** New peer ids one source address (IPv4, IPv6 /64) may bring per minute. */
  maxNewIdentitiesPerMinute: number
  /**
   * Send envelopes to directly authenticated peers as a sealed stream (members now, one batch signature
   * shortly after) rather than each with its own signature. spec/envelope.md, "Sealed streams".
   */
  sealedStreams: boolean
  /** How long an outgoing sealed batch stays open before its one signature is made, ms. */
  sealWindowMs: number
  /** Local API port on 127.0.0.1 (0: an ephemeral port, written to api.json). */
  apiPort: number
  /** Where log lines go: 'stderr' or a file path (relative to the home). */
  log: string
  /** Other sections (owned by other layers), kept as they are. */
  [section: string]: unknown
}

export const CONFIG_FILE = 'config.json'

/**
 * Defaults. Listening on 127.0.0.1 (ephemeral port) keeps a fresh node private to this machine until its
 * owner opens it (`--listen /ip4/0.0.0.0/tcp/4001`): nothing is exposed by surprise. mDNS is on (it
 * announces only what the node listens on). Relays can reach the node as soon as it adds '/p2p-circuit'.
 */
export function defaultConfig(): NodeConfig {
  return {
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [],
    announce: [],
    mdns: true,
    relay: false,
    relayLimits: { durationSeconds: RELAY_LIMITS.durationMs / 1000, dataBytes: RELAY_LIMITS.dataBytes },
    trustedRoots: [],
    pingIntervalMs: 15_000,
    frameTimeoutMs: 30_000,
    signatureCheck: 'concurrent',
    quarantineMs: 60_000,
    allowAddresses: ['127.0.0.0/8', '::1/128'],
    maxNewIdentitiesPerMinute: 10,
    sealedStreams: true,
    sealWindowMs: DEFAULT_SEAL_WINDOW_MS,
    apiPort: 0,
    log: 'stderr',
  }
}

function strings(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ConfigError(`config.json: '${field}' must be an array of strings`)
  return v as string[]
}

/** Reads config.json (defaults for missing fields); throws ConfigError on a bad file. */
export function loadConfig(home: string): NodeConfig {
  const file = join(home, CONFIG_FILE)
  const cfg = defaultConfig()
  if (!existsSync(file)) return cfg
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new ConfigError(`config.json is not valid JSON: ${(err as Error).message}`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError('config.json must hold a JSON object')
  const r = raw as Record<string, unknown>
  const out: NodeConfig = { ...cfg, ...r } as NodeConfig
  for (const f of ['listen', 'bootstrap', 'announce', 'trustedRoots', 'allowAddresses'] as const) if (f in r) out[f] = strings(r[f], f)
  if ('maxNewIdentitiesPerMinute' in r && (!Number.isInteger(r.maxNewIdentitiesPerMinute) || (r.maxNewIdentitiesPerMinute as number) < 1)) throw new ConfigError("config.json: 'maxNewIdentitiesPerMinute' must be a positive integer")
  for (const f of ['mdns', 'relay', 'sealedStreams'] as const) if (f in r && typeof r[f] !== 'boolean') throw new ConfigError(`config.json: '${f}' must be true or false`)
  if ('relayLimits' in r) out.relayLimits = relayLimits(r.relayLimits)
  if ('apiPort' in r && (!Number.isInteger(r.apiPort) || (r.apiPort as number) < 0 || (r.apiPort as number) > 65535)) throw new ConfigError("config.json: 'apiPort' must be a port number")
  if ('pingIntervalMs' in r && (!Number.isInteger(r.pingIntervalMs) || (r.pingIntervalMs as number) < 0)) throw new ConfigError("config.json: 'pingIntervalMs' must be a non-negative integer (0: off)")
  if ('frameTimeoutMs' in r && (!Number.isInteger(r.frameTimeoutMs) || (r.frameTimeoutMs as number) < 1)) throw new ConfigError("config.json: 'frameTimeoutMs' must be a positive integer")
  if ('signatureCheck' in r && r.signatureCheck !== 'concurrent' && r.signatureCheck !== 'inline') throw new ConfigError("config.json: 'signatureCheck' must be 'concurrent' or 'inline'")
  if ('quarantineMs' in r && (!Number.isInteger(r.quarantineMs) || (r.quarantineMs as number) < 0)) throw new ConfigError("config.json: 'quarantineMs' must be a non-negative integer (0: off)")
  if ('sealWindowMs' in r && (!Number.isInteger(r.sealWindowMs) || (r.sealWindowMs as number) < 0 || (r.sealWindowMs as number) > 1000)) throw new ConfigError("config.json: 'sealWindowMs' must be an integer from 0 to 1000")
  if ('log' in r && typeof r.log !== 'string') throw new ConfigError("config.json: 'log' must be 'stderr' or a file path")
  checkPricePolicy(r.orchestration)
  checkRebalance(r.orchestration)
  return out
}

/**
 * The owner's price policy (`orchestration.price`, spec/contracts.md) is money: whole numbers of µNLC (and
 * basis points), never floats. A bad one stops the daemon here, before anything starts, naming field and unit.
 */
function checkPricePolicy(orchestration: unknown): void {
  if (typeof orchestration !== 'object' || orchestration === null || !('price' in orchestration)) return
  try {
    pricePolicyFrom((orchestration as { price?: unknown }).price)
  } catch (err) {
    if (!(err instanceof InvalidPricePolicyError)) throw err
    const field = String(err.data?.field ?? 'price')
    throw new ConfigError(`config.json: 'orchestration.${field === 'price' ? 'price' : `price.${field}`}': ${err.message}`)
  }
}

/** `orchestration.rebalance` (spec/migration.md "Rebalancing"): a bad one stops the daemon, naming the field. */
function checkRebalance(orchestration: unknown): void {
  if (typeof orchestration !== 'object' || orchestration === null || !('rebalance' in orchestration)) return
  try {
    rebalancePolicyFrom((orchestration as { rebalance?: unknown }).rebalance)
  } catch (err) {
    throw new ConfigError(`config.json: 'orchestration.${(err as Error).message.slice(1)}`)
  }
}

/** Writes config.json atomically (mode 0600). */
export function saveConfig(home: string, cfg: NodeConfig): void {
  const file = join(home, CONFIG_FILE)
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 })
  renameSync(tmp, file)
}

/** `relayLimits`: whole seconds (1 s to 1 day) and bytes (64 KiB to 64 GiB); what is left out keeps its default. */
function relayLimits(v: unknown): NodeConfig['relayLimits'] {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError("config.json: 'relayLimits' must be an object { durationSeconds, dataBytes }")
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) if (k !== 'durationSeconds' && k !== 'dataBytes') throw new ConfigError(`config.json: 'relayLimits.${k}' is not a field (durationSeconds, dataBytes)`)
  const durationSeconds = o.durationSeconds ?? RELAY_LIMITS.durationMs / 1000
  const dataBytes = o.dataBytes ?? RELAY_LIMITS.dataBytes
  if (!Number.isInteger(durationSeconds) || (durationSeconds as number) < 1 || (durationSeconds as number) > 86_400) throw new ConfigError("config.json: 'relayLimits.durationSeconds' must be a whole number from 1 to 86400")
  if (!Number.isSafeInteger(dataBytes) || (dataBytes as number) < 65_536 || (dataBytes as number) > 64 * 1024 ** 3) throw new ConfigError("config.json: 'relayLimits.dataBytes' must be a whole number of bytes from 65536 to 68719476736")
  return { durationSeconds: durationSeconds as number, dataBytes: dataBytes as number }
}
