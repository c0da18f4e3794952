import t from 'tap'
import { parseShare, formatShare, checkShareFits, defaultShare } from '../share/share.ts'
import { parseSize, formatSize } from '../share/size.ts'
import { InvalidShareError, InvalidSizeError, ShareExceedsHardwareError } from '../errors.ts'

const GiB = 1024 ** 3

t.test('a share string is parsed into cores, bytes and GPUs', async (t) => {
  t.same(parseShare('cpu=2,memory=4GiB,disk=20GiB,gpu=0'), { cpu: 2, memoryBytes: 4 * GiB, diskBytes: 20 * GiB, gpu: 0 })
  t.same(parseShare('cpu=0.5, memory=512MiB'), { cpu: 0.5, memoryBytes: 512 * 1024 ** 2, diskBytes: 0, gpu: 0 }, 'a resource left out is not shared')
  t.same(parseShare({ cpu: 2, memory: '4GiB', disk: '20GB', gpu: 1 }), { cpu: 2, memoryBytes: 4 * GiB, diskBytes: 20e9, gpu: 1 }, 'the config.json object form')
  t.equal(formatShare(parseShare('cpu=2,memory=4GiB,disk=20GiB,gpu=0')), 'cpu=2,memory=4GiB,disk=20GiB,gpu=0', 'formatting round-trips')
})

t.test('a bad share is refused with InvalidShareError naming the problem', async (t) => {
  for (const bad of ['', 'cpu', 'cpu=two', 'cpu=-1', 'ram=4GiB', 'memory=4XB', 'gpu=0.5', 'cpu=1,cpu=2']) {
    t.throws(() => parseShare(bad), InvalidShareError, `'${bad}' is refused`)
  }
  t.throws(() => parseShare({ cpu: true } as unknown as Record<string, unknown>), InvalidShareError)
})

t.test('sizes take binary and decimal units and refuse anything else with InvalidSizeError', async (t) => {
  t.equal(parseSize('4GiB'), 4 * GiB)
  t.equal(parseSize('1.5k'), 1500, 'k is 1000: one meaning with workload quantities')
  t.equal(parseSize('1.5Ki'), 1536)
  t.equal(parseSize('4G'), 4e9, 'G is 10^9 here as in a workload (it was 2^30 here once)')
  t.equal(parseSize('4gib'), 4 * GiB, 'any case')
  t.equal(parseSize('20GB'), 20e9)
  t.equal(parseSize('1024'), 1024)
  t.equal(formatSize(4 * GiB), '4GiB')
  t.throws(() => parseSize('4 gigs'), InvalidSizeError)
  t.throws(() => parseSize('-1'), InvalidSizeError)
})

t.test('a share above the hardware is refused with ShareExceedsHardwareError', async (t) => {
  const hw = { cpuCores: 2, memoryBytes: 8 * GiB, diskBytes: 100 * GiB, gpus: 0 }
  t.doesNotThrow(() => checkShareFits(parseShare('cpu=2,memory=4GiB,disk=20GiB,gpu=0'), hw))
  const err = t.throws(() => checkShareFits(parseShare('cpu=4,memory=4GiB'), hw), ShareExceedsHardwareError) as ShareExceedsHardwareError
  t.equal(err.resource, 'cpu')
  t.throws(() => checkShareFits(parseShare('cpu=1,gpu=1'), hw), ShareExceedsHardwareError, 'a GPU the machine lacks')
  const d = defaultShare({ cpuCores: 1, memoryBytes: GiB, diskBytes: 2 * GiB, gpus: 0 })
  t.ok(d.cpu <= 1 && d.memoryBytes <= GiB / 2 && d.diskBytes <= GiB, 'the default share is cut down to small machines')
})
