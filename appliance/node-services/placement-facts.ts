// The facts a node states about itself in its heartbeats (spec/appliance.md, "Heartbeats"), so that placement
// can choose it from the capacity index before asking it: the same facts its bids state, read from the same
// config.json `orchestration` section the orchestration service reads (region, labels, owner, price), with
// the same defaults, plus the machine's arch and the runtimes whose executors answer.
import { arch as osArch } from 'node:os'
import type { PlacementFacts } from '../../actors/placement/capacity-report.ts'
import { pricePolicyFrom, type PricePolicy } from '../../actors/placement/price.ts'
import type { Arch, RuntimeType } from '../../actors/workload/workload.ts'
import type { ExecutorKind } from '../executor/executor.ts'

const runtimeOf: Record<ExecutorKind, RuntimeType> = { docker: 'container', wasm: 'wasm', microvm: 'microvm', actor: 'actor' }

export const machineArch = (): Arch => (osArch() === 'arm64' ? 'arm64' : osArch() === 'riscv64' ? 'riscv64' : 'amd64')

/** The runtimes of the executors that answered (`available()` ok). */
export function runtimesOf(available: Partial<Record<ExecutorKind, { ok: boolean }>>): RuntimeType[] {
  return (Object.keys(runtimeOf) as ExecutorKind[]).filter((k) => available[k]?.ok === true).map((k) => runtimeOf[k])
}

export function placementFacts(config: Record<string, unknown>, did: string, runtimes: RuntimeType[]): PlacementFacts {
  const o = (typeof config.orchestration === 'object' && config.orchestration !== null ? config.orchestration : {}) as {
    region?: unknown; labels?: unknown; owner?: unknown; price?: unknown
  }
  const labels = typeof o.labels === 'object' && o.labels !== null && !Array.isArray(o.labels)
    ? Object.fromEntries(Object.entries(o.labels).filter((e): e is [string, string] => typeof e[1] === 'string'))
    : {}
  let price: PricePolicy | undefined
  try {
    price = pricePolicyFrom(o.price as Partial<PricePolicy> | undefined)
  } catch {
    price = undefined // a bad policy stops the orchestration service, which says why; the heartbeat only leaves the hint out
  }
  return {
    owner: certifiedIssuer(config.owner) ?? (typeof o.owner === 'string' ? o.owner : did),
    arch: machineArch(),
    region: typeof o.region === 'string' ? o.region : 'local',
    labels,
    runtimes,
    ...(price ? { price } : {}),
  }
}

/** The issuer of config.json `owner.certificate` (checked when the orchestration service starts). */
function certifiedIssuer(owner: unknown): string | undefined {
  const issuer = (owner as { certificate?: { body?: { issuer?: unknown } } } | null | undefined)?.certificate?.body?.issuer
  return typeof issuer === 'string' ? issuer : undefined
}
