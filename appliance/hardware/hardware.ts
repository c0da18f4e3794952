// What this machine is: CPU (model, cores, architecture), memory, disk, GPUs (through nvidia-smi when it
// exists; none otherwise, never a failure), OS. Read at start and on demand; the allocator also asks for
// what is free right now (hostFree).
import { cpus, arch, platform, release, type, totalmem, freemem, availableParallelism } from 'node:os'
import { statfs } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { execFile } from 'node:child_process'

export interface GpuInfo {
  index: number
  name: string
  memoryBytes: number
  uuid: string
}

export interface HardwareInfo {
  cpu: { model: string; cores: number; arch: string; speedMHz: number }
  memory: { totalBytes: number; availableBytes: number }
  disk: { path: string; totalBytes: number; freeBytes: number }
  gpus: GpuInfo[]
  os: { platform: string; type: string; release: string }
}

/** Free right now: memory the kernel says is available, disk free for the node's data path, GPUs. */
export interface HostFree {
  cpu: number
  memoryBytes: number
  diskBytes: number
  gpu: number
}

/** MemAvailable from /proc/meminfo (what can be allocated without swapping); os.freemem() elsewhere. */
export function availableMemory(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))
    if (m) return Number(m[1]) * 1024
  } catch {
    // not Linux
  }
  return freemem()
}

export async function diskSpace(path: string): Promise<{ totalBytes: number; freeBytes: number }> {
  const s = await statfs(path)
  return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize }
}

/** GPUs through nvidia-smi; an empty list when it is absent or fails. */
export function discoverGpus(nvidiaSmi = 'nvidia-smi'): Promise<GpuInfo[]> {
  return new Promise((resolve) => {
    execFile(nvidiaSmi, ['--query-gpu=index,name,memory.total,uuid', '--format=csv,noheader,nounits'], { timeout: 5000 }, (err, stdout) => {
      if (err) return resolve([])
      resolve(parseNvidiaSmi(stdout))
    })
  })
}

/** Parses `0, NVIDIA A100-SXM4-40GB, 40960, GPU-…` lines (memory in MiB). */
export function parseNvidiaSmi(csv: string): GpuInfo[] {
  const out: GpuInfo[] = []
  for (const line of csv.split('\n')) {
    const f = line.split(',').map((s) => s.trim())
    if (f.length < 4 || f[0] === '' || !/^\d+$/.test(f[0]!)) continue
    out.push({ index: Number(f[0]), name: f[1]!, memoryBytes: Number(f[2]) * 1024 * 1024, uuid: f[3]! })
  }
  return out
}

export async function discoverHardware(opts: { diskPath: string; nvidiaSmi?: string }): Promise<HardwareInfo> {
  const c = cpus()
  const [disk, gpus] = await Promise.all([diskSpace(opts.diskPath), discoverGpus(opts.nvidiaSmi)])
  return {
    cpu: { model: c[0]?.model.trim() ?? 'unknown', cores: availableParallelism(), arch: arch(), speedMHz: c[0]?.speed ?? 0 },
    memory: { totalBytes: totalmem(), availableBytes: availableMemory() },
    disk: { path: opts.diskPath, ...disk },
    gpus,
    os: { platform: platform(), type: type(), release: release() },
  }
}

export async function hostFree(diskPath: string, gpus: number): Promise<HostFree> {
  const disk = await diskSpace(diskPath)
  return { cpu: availableParallelism(), memoryBytes: availableMemory(), diskBytes: disk.freeBytes, gpu: gpus }
}
