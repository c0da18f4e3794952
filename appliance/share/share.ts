// The owner's share: how much of this machine the owner offers to the network. Written as
// `--share cpu=2,memory=4GiB,disk=20GiB,gpu=0` or as config.json `share` (the same string, or an object
// `{ "cpu": 2, "memory": "4GiB", "disk": "20GiB", "gpu": 0 }`). A resource left out is not shared (0), except
// when no share is configured at all: then DEFAULT_SHARE applies. The share never exceeds the hardware.
import { InvalidShareError, InvalidSizeError, ShareExceedsHardwareError } from '../errors.ts'
import { formatSize, parseSize } from './size.ts'

export interface Share {
  /** CPU cores (fractional allowed). */
  cpu: number
  memoryBytes: number
  diskBytes: number
  /** Whole GPUs. */
  gpu: number
}

/** Shared when the owner configured nothing: small enough to leave the machine usable. */
export const DEFAULT_SHARE = 'cpu=1,memory=1GiB,disk=4GiB,gpu=0'

const KEYS = ['cpu', 'memory', 'disk', 'gpu'] as const
type ShareKey = (typeof KEYS)[number]

function setValue(share: Share, input: string, key: string, raw: string | number): void {
  if (!(KEYS as readonly string[]).includes(key)) throw new InvalidShareError(input, `unknown resource '${key}' (expected ${KEYS.join(', ')})`)
  const k = key as ShareKey
  if (k === 'cpu' || k === 'gpu') {
    const n = typeof raw === 'number' ? raw : Number(String(raw).trim())
    if (String(raw).trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidShareError(input, `${k} must be a number >= 0 (got '${raw}')`)
    if (k === 'gpu' && !Number.isInteger(n)) throw new InvalidShareError(input, `gpu must be a whole number (got '${raw}')`)
    share[k] = n
    return
  }
  try {
    const bytes = parseSize(raw)
    if (k === 'memory') share.memoryBytes = bytes
    else share.diskBytes = bytes
  } catch (err) {
    if (err instanceof InvalidSizeError) throw new InvalidShareError(input, `${k}: ${err.message}`)
    throw err
  }
}

/** Parses `cpu=2,memory=4GiB,disk=20GiB,gpu=0` (or the config.json object form). */
export function parseShare(input: string | Record<string, unknown>): Share {
  const share: Share = { cpu: 0, memoryBytes: 0, diskBytes: 0, gpu: 0 }
  const seen = new Set<string>()
  if (typeof input === 'string') {
    if (input.trim() === '') throw new InvalidShareError(input, 'empty')
    for (const part of input.split(',')) {
      const eq = part.indexOf('=')
      if (eq < 0) throw new InvalidShareError(input, `'${part}' is not key=value`)
      const key = part.slice(0, eq).trim().toLowerCase()
      if (seen.has(key)) throw new InvalidShareError(input, `'${key}' given twice`)
      seen.add(key)
      setValue(share, input, key, part.slice(eq + 1).trim())
    }
    return share
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new InvalidShareError(String(input), 'must be a string or an object')
  const text = JSON.stringify(input)
  for (const [key, v] of Object.entries(input)) {
    if (typeof v !== 'string' && typeof v !== 'number') throw new InvalidShareError(text, `${key} must be a number or a size string`)
    setValue(share, text, key.toLowerCase(), v)
  }
  return share
}

export function formatShare(s: Share): string {
  return `cpu=${s.cpu},memory=${formatSize(s.memoryBytes)},disk=${formatSize(s.diskBytes)},gpu=${s.gpu}`
}

/** Refuses a share above the machine (cores, total memory, disk size, GPUs). */
export function checkShareFits(share: Share, hw: { cpuCores: number; memoryBytes: number; diskBytes: number; gpus: number }): void {
  if (share.cpu > hw.cpuCores) throw new ShareExceedsHardwareError('cpu', share.cpu, hw.cpuCores)
  if (share.memoryBytes > hw.memoryBytes) throw new ShareExceedsHardwareError('memory', share.memoryBytes, hw.memoryBytes)
  if (share.diskBytes > hw.diskBytes) throw new ShareExceedsHardwareError('disk', share.diskBytes, hw.diskBytes)
  if (share.gpu > hw.gpus) throw new ShareExceedsHardwareError('gpu', share.gpu, hw.gpus)
}

/** The default share, cut down to what the machine has. */
export function defaultShare(hw: { cpuCores: number; memoryBytes: number; diskBytes: number; gpus: number }): Share {
  const d = parseShare(DEFAULT_SHARE)
  return {
    cpu: Math.min(d.cpu, hw.cpuCores),
    memoryBytes: Math.min(d.memoryBytes, Math.floor(hw.memoryBytes / 2)),
    diskBytes: Math.min(d.diskBytes, Math.floor(hw.diskBytes / 2)),
    gpu: 0,
  }
}
