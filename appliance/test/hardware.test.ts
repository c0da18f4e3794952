import t from 'tap'
import { tmpdir, availableParallelism, totalmem } from 'node:os'
import { discoverHardware, discoverGpus, parseNvidiaSmi } from '../hardware/hardware.ts'
import { runEnrollmentBenchmark } from '../hardware/benchmark.ts'

t.test('hardware discovery reports this machine', async (t) => {
  const hw = await discoverHardware({ diskPath: tmpdir() })
  t.equal(hw.cpu.cores, availableParallelism())
  t.equal(hw.cpu.arch, process.arch)
  t.ok(hw.cpu.model.length > 0, `cpu model '${hw.cpu.model}'`)
  t.equal(hw.memory.totalBytes, totalmem())
  t.ok(hw.memory.availableBytes > 0 && hw.memory.availableBytes <= hw.memory.totalBytes)
  t.ok(hw.disk.totalBytes > 0 && hw.disk.freeBytes <= hw.disk.totalBytes)
  t.ok(Array.isArray(hw.gpus))
  t.equal(hw.os.platform, process.platform)
})

t.test('no nvidia-smi means no GPUs, not a failure', async (t) => {
  t.same(await discoverGpus('/nonexistent/nvidia-smi'), [])
})

t.test('nvidia-smi CSV is parsed into GPUs with their memory', async (t) => {
  const csv = '0, NVIDIA A100-SXM4-40GB, 40960, GPU-aaaa\n1, NVIDIA T4, 15360, GPU-bbbb\n'
  t.same(parseNvidiaSmi(csv), [
    { index: 0, name: 'NVIDIA A100-SXM4-40GB', memoryBytes: 40960 * 1024 * 1024, uuid: 'GPU-aaaa' },
    { index: 1, name: 'NVIDIA T4', memoryBytes: 15360 * 1024 * 1024, uuid: 'GPU-bbbb' },
  ])
  t.same(parseNvidiaSmi('NVIDIA-SMI has failed\n'), [])
})

t.test('the enrollment benchmark measures CPU and memory throughput', async (t) => {
  const b = runEnrollmentBenchmark({ cpuMs: 50, memoryMs: 50 })
  t.ok(b.cpuSha256MBps > 0, `${b.cpuSha256MBps} MB/s sha256`)
  t.ok(b.memoryCopyGBps > 0, `${b.memoryCopyGBps} GB/s copy`)
  t.ok(!Number.isNaN(Date.parse(b.at)))
})
