// Parses allocation and reservation requests that arrive as JSON (local API), with a typed error for each
// malformed field. Sizes may be numbers (bytes) or strings such as "64MiB".
import type { RuntimeSpec } from '../executor/executor.ts'
import type { ResourceRequest } from '../allocator/allocator.ts'
import type { AllocationRequest } from './allocation-manager.ts'
import { InvalidAllocationError, InvalidSizeError } from '../errors.ts'
import { parseSize } from '../share/size.ts'

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const strArr = (v: unknown, f: string): string[] => {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new InvalidAllocationError(`${f} must be an array of strings`)
  return v as string[]
}
const num = (v: unknown, f: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new InvalidAllocationError(`${f} must be a number >= 0`)
  return v
}
const size = (v: unknown, f: string): number => {
  try {
    if (typeof v !== 'number' && typeof v !== 'string') throw new InvalidSizeError(String(v))
    return parseSize(v)
  } catch {
    throw new InvalidAllocationError(`${f} must be a byte count or a size such as "64MiB"`)
  }
}

export function parseRuntime(v: unknown): RuntimeSpec {
  if (!isObj(v)) throw new InvalidAllocationError('runtime must be an object with a kind')
  switch (v.kind) {
    case 'docker': {
      if (typeof v.image !== 'string' || v.image === '') throw new InvalidAllocationError('runtime.image must be a string')
      if (v.runtime !== undefined && v.runtime !== 'runc' && v.runtime !== 'runsc') throw new InvalidAllocationError("runtime.runtime must be 'runc' or 'runsc'")
      return {
        kind: 'docker',
        image: v.image,
        ...(v.command !== undefined ? { command: strArr(v.command, 'runtime.command') } : {}),
        ...(v.runtime !== undefined ? { runtime: v.runtime } : {}),
      }
    }
    case 'wasm':
      if (typeof v.module !== 'string' || v.module === '') throw new InvalidAllocationError('runtime.module must be a path')
      return { kind: 'wasm', module: v.module, ...(v.args !== undefined ? { args: strArr(v.args, 'runtime.args') } : {}) }
    case 'microvm':
    case 'actor':
      // Shapes owned by their executors; passed through after the kind check.
      return v as unknown as RuntimeSpec
    default:
      throw new InvalidAllocationError(`runtime.kind must be docker, wasm, microvm or actor (got ${JSON.stringify(v.kind)})`)
  }
}

function parseResources(v: unknown): AllocationRequest['resources'] {
  if (!isObj(v)) throw new InvalidAllocationError('resources must be an object { cpu, memory, ... }')
  return {
    cpu: num(v.cpu, 'resources.cpu'),
    memoryBytes: size(v.memoryBytes ?? v.memory, 'resources.memory'),
    ...(v.diskBytes !== undefined || v.disk !== undefined ? { diskBytes: size(v.diskBytes ?? v.disk, 'resources.disk') } : {}),
    ...(v.gpu !== undefined ? { gpu: num(v.gpu, 'resources.gpu') } : {}),
    ...(v.pids !== undefined ? { pids: num(v.pids, 'resources.pids') } : {}),
    ...(v.cpuTimeMs !== undefined ? { cpuTimeMs: num(v.cpuTimeMs, 'resources.cpuTimeMs') } : {}),
  }
}

export function parseAllocationRequest(body: unknown): AllocationRequest {
  if (!isObj(body)) throw new InvalidAllocationError('the request body must be a JSON object')
  const env = body.env
  if (env !== undefined && (!isObj(env) || !Object.values(env).every((x) => typeof x === 'string'))) throw new InvalidAllocationError('env must be an object of strings')
  const ports = body.ports
  if (ports !== undefined && (!Array.isArray(ports) || !ports.every((p) => isObj(p) && typeof p.containerPort === 'number' && (p.protocol === undefined || p.protocol === 'tcp' || p.protocol === 'udp')))) {
    throw new InvalidAllocationError('ports must be [{ containerPort, protocol? }]')
  }
  const restart = body.restart
  if (restart !== undefined && (!isObj(restart) || (restart.policy !== undefined && !['always', 'on-failure', 'never'].includes(String(restart.policy))))) {
    throw new InvalidAllocationError("restart must be { policy: 'always' | 'on-failure' | 'never', maxRestarts?, backoffMs?, maxBackoffMs? }")
  }
  return {
    ...(body.id !== undefined ? { id: String(body.id) } : {}),
    runtime: parseRuntime(body.runtime),
    ...(env !== undefined ? { env: env as Record<string, string> } : {}),
    resources: parseResources(body.resources),
    ...(ports !== undefined ? { ports: ports as AllocationRequest['ports'] } : {}),
    ...(restart !== undefined ? { restart: restart as AllocationRequest['restart'] } : {}),
    ...(body.graceMs !== undefined ? { graceMs: num(body.graceMs, 'graceMs') } : {}),
    ...(body.reservationId !== undefined ? { reservationId: String(body.reservationId) } : {}),
    ...(body.labels !== undefined && isObj(body.labels) ? { labels: body.labels as Record<string, string> } : {}),
  }
}

export function parseReservationRequest(body: unknown): { resources: ResourceRequest; ttlMs?: number } {
  if (!isObj(body)) throw new InvalidAllocationError('the request body must be a JSON object')
  const r = parseResources(body.resources)
  return {
    resources: { cpu: r.cpu, memoryBytes: r.memoryBytes, ...(r.diskBytes !== undefined ? { diskBytes: r.diskBytes } : {}), ...(r.gpu !== undefined ? { gpu: r.gpu } : {}), ...(body.ports !== undefined ? { ports: num(body.ports, 'ports') } : {}) },
    ...(body.ttlMs !== undefined ? { ttlMs: num(body.ttlMs, 'ttlMs') } : {}),
  }
}
