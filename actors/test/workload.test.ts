import t from 'tap'
import { InvalidWorkloadError, WorkloadParseError } from '../errors.ts'
import { parseQuantity } from '../workload/quantity.ts'
import { loadWorkloadFile, maxPriceOf, parseWorkload, parseWorkloadText, validateWorkload, workloadFromWire } from '../workload/workload.ts'

const base = () => ({
  apiVersion: 'noir/v1', kind: 'service', name: 'web',
  runtime: { type: 'container', image: 'noir/busybox:latest' },
  resources: { cpu: 0.5, memory: '64Mi' },
})

const issuesOf = (v: unknown): { path: string; reason: string }[] => {
  try {
    validateWorkload(v)
  } catch (err) {
    if (err instanceof InvalidWorkloadError) return err.issues
    throw err
  }
  return []
}

t.test('a minimal service is valid and gets its defaults', async (t) => {
  const w = validateWorkload(base())
  t.equal(w.lane, 'best-effort')
  t.equal(w.service?.replicas, 1)
  t.equal(w.service?.restart, 'always')
  t.equal(w.resources.memoryBytes, 64 * 2 ** 20)
  t.equal(w.leaseSeconds, 3600)
})

t.test('the examples in examples/ validate', async (t) => {
  const s = loadWorkloadFile(new URL('../../examples/service/service.yaml', import.meta.url).pathname)
  t.equal(s.kind, 'service')
  t.equal(s.lane, 'protected')
  const j = loadWorkloadFile(new URL('../../examples/job/job.yaml', import.meta.url).pathname)
  t.equal(j.job?.retries, 2)
  t.equal(j.leaseSeconds, 120, 'a job lease defaults to its deadline')
})

t.test('maxPrice is whole µNLC: digits or a safe integer, normalized to digits; anything else is refused naming the field', async (t) => {
  const base = { apiVersion: 'noir/v1', kind: 'job', name: 'j', runtime: { type: 'wasm', module: 'm.wasm' }, resources: { cpu: 1, memory: '1Gi' } }
  t.equal(validateWorkload({ ...base, constraints: { maxPrice: '500000' } }).constraints.maxPrice, '500000')
  t.equal(validateWorkload({ ...base, constraints: { maxPrice: 500000 } }).constraints.maxPrice, '500000', 'a JSON integer becomes its digits')
  t.equal(validateWorkload({ ...base, constraints: { maxPrice: 0 } }).constraints.maxPrice, '0')
  t.equal(maxPriceOf(validateWorkload({ ...base, constraints: { maxPrice: '9'.repeat(38) } }).constraints), 10n ** 38n - 1n, 'exact far beyond a double')
  t.equal(loadWorkloadFile(new URL('../../examples/service/service.yaml', import.meta.url).pathname).constraints.maxPrice, '5000000', 'the example asks at most 5 NLC')
  for (const bad of [0.5, '0.5', -1, '-1', '1e6', 1e300, '01', ' 1', '', 2 ** 53, '9'.repeat(39), null, true]) {
    const err = t.throws(() => validateWorkload({ ...base, constraints: { maxPrice: bad } }), InvalidWorkloadError, JSON.stringify(bad)) as InvalidWorkloadError | undefined
    t.ok(err?.issues.some((i) => i.path === '$.constraints.maxPrice'), `${JSON.stringify(bad)}: names $.constraints.maxPrice`)
  }
  // a normalized workload with a number in maxPrice (as a node before integer prices sent) is not a wire workload
  const w = validateWorkload({ ...base, constraints: { maxPrice: '5' } })
  t.throws(() => workloadFromWire({ ...w, constraints: { maxPrice: 5 } }), InvalidWorkloadError)
})

t.test('YAML and JSON forms give the same workload', async (t) => {
  const yaml = 'apiVersion: noir/v1\nkind: job\nname: j\nruntime: {type: wasm, module: m.wasm}\nresources: {cpu: 1, memory: 1Gi}\n'
  const json = JSON.stringify({ apiVersion: 'noir/v1', kind: 'job', name: 'j', runtime: { type: 'wasm', module: 'm.wasm' }, resources: { cpu: 1, memory: '1Gi' } })
  t.same(parseWorkload(yaml), parseWorkload(json))
})

t.test('text that is not YAML is refused with WorkloadParseError', async (t) => {
  t.throws(() => parseWorkload('kind: [unclosed', 'bad.yaml'), WorkloadParseError)
  t.throws(() => parseWorkload('a: 1\na: 2'), WorkloadParseError, 'duplicate keys are refused')
})

t.test('each schema violation names its JSON path and the reason', async (t) => {
  const cases: [unknown, string, RegExp][] = [
    [{ ...base(), kind: 'daemon' }, '$.kind', /one of "service", "job"/],
    [{ ...base(), name: 'Bad_Name' }, '$.name', /does not match/],
    [{ ...base(), resources: { cpu: 0, memory: '1Gi' } }, '$.resources.cpu', />= 0.01/],
    [{ ...base(), resources: { cpu: 1 } }, '$.resources.memory', /required/],
    [{ ...base(), resources: { cpu: 1, memory: 'lots' } }, '$.resources.memory', /does not match/],
    [{ ...base(), runtime: { type: 'container' } }, '$.runtime.image', /required/],
    [{ ...base(), runtime: { type: 'wasm', image: 'x' } }, '$.runtime.module', /required/],
    [{ ...base(), lane: 'fast' }, '$.lane', /one of/],
    [{ ...base(), constraints: { arch: ['sparc'] } }, '$.constraints.arch[0]', /one of/],
    [{ ...base(), constraints: { node: 'did:key:z6Mk' } }, '$.constraints.node', /not allowed/],
    [{ ...base(), constraints: { minTrust: 2 } }, '$.constraints.minTrust', /<= 1/],
    [{ ...base(), env: { '1BAD': 'x' } }, '$.env["1BAD"]', /name does not match/],
    [{ ...base(), ports: [{ port: 70000 }] }, '$.ports[0].port', /<= 65535/],
    [{ ...base(), secrets: [{ name: 'db', file: '/etc/shadow' }] }, '$.secrets[0].file', /does not match/],
    [{ ...base(), extra: true }, '$.extra', /unknown field/],
    [{ ...base(), service: { replicas: 1.5 } }, '$.service.replicas', /integer/],
  ]
  for (const [value, path, reason] of cases) {
    const issues = issuesOf(value)
    const hit = issues.find((i) => i.path === path)
    t.ok(hit, `an issue at ${path} (got ${JSON.stringify(issues)})`)
    if (hit) t.match(hit.reason, reason, `${path}: ${hit.reason}`)
  }
})

t.test('rules beyond the schema are checked with paths too', async (t) => {
  t.match(issuesOf({ ...base(), lane: 'protected', service: { replicas: 1 } }), [{ path: '$.service.replicas', reason: /at least 2 replicas/ }])
  t.match(issuesOf({ ...base(), job: { retries: 1 } }), [{ path: '$.job', reason: /only for kind: job/ }])
  t.match(issuesOf({ ...base(), kind: 'job', job: { completions: 1, parallelism: 3 } }), [{ path: '$.job.parallelism' }])
  t.match(issuesOf({ ...base(), env: { DB: 'x' }, secrets: [{ name: 'db-pass', env: 'DB' }] }), [{ path: '$.secrets[0].env', reason: /shadowed/ }])
  t.match(issuesOf({ ...base(), secrets: [{ name: 'db' }] }), [{ path: '$.secrets[0]', reason: /exactly one target/ }], 'a secret needs a target')
  t.match(issuesOf({ ...base(), secrets: [{ name: 'db', env: 'DB', file: '/run/secrets/db' }] }), [{ path: '$.secrets[0]', reason: /exactly one target/ }], 'and only one')
  t.match(issuesOf({ ...base(), secrets: [{ name: 'a', file: '/run/secrets/x' }, { name: 'b', file: '/run/secrets/x' }] }), [{ path: '$.secrets[1].file', reason: /two secrets/ }])
  t.match(issuesOf({ ...base(), runtime: { type: 'wasm', module: 'm' }, secrets: [{ name: 'a', file: '/run/secrets/x' }] }), [{ path: '$.secrets[0].file', reason: /container runtime only/ }])
  t.match(issuesOf({ ...base(), service: { healthCheck: { type: 'http', port: 80 } } }), [{ path: '$.service.healthCheck.path' }])
  t.match(issuesOf({ ...base(), constraints: { owners: { allow: ['did:a'], deny: ['did:a'] } } }), [{ path: '$.constraints.owners' }])
  t.match(issuesOf({ ...base(), resources: { cpu: 1, memory: 1024 } }), [{ path: '$.resources.memory', reason: /at least 4MiB/ }])
})

t.test('runtime.checkpoint: process is for a container without ports (it runs under runsc, no network)', async (t) => {
  t.equal(validateWorkload({ ...base(), runtime: { ...base().runtime, checkpoint: 'process' } }).runtime.checkpoint, 'process')
  t.match(issuesOf({ ...base(), runtime: { type: 'wasm', module: 'm', checkpoint: 'process' } }), [{ path: '$.runtime.checkpoint', reason: /container runtime/ }])
  t.match(issuesOf({ ...base(), runtime: { ...base().runtime, checkpoint: 'process' }, ports: [{ port: 80 }] }), [{ path: '$.runtime.checkpoint', reason: /ports/ }])
  t.match(issuesOf({ ...base(), runtime: { ...base().runtime, checkpoint: 'memory' } }), [{ path: '$.runtime.checkpoint' }], 'process is the only level')
})

t.test('a protected service defaults to two replicas', async (t) => {
  t.equal(validateWorkload({ ...base(), lane: 'protected' }).service?.replicas, 2)
})

t.test('every issue is reported at once, not only the first', async (t) => {
  const issues = issuesOf({ apiVersion: 'noir/v2', kind: 'service', name: 'x', runtime: { type: 'vm' }, resources: {} })
  t.ok(issues.length >= 4, JSON.stringify(issues))
})

t.test('quantities accept binary and decimal units', async (t) => {
  t.equal(parseQuantity('1Gi'), 2 ** 30)
  t.equal(parseQuantity('1.5GiB'), 1.5 * 2 ** 30)
  t.equal(parseQuantity('2G'), 2e9)
  t.equal(parseQuantity(4096), 4096)
  t.equal(parseQuantity('12 parsecs'), undefined)
})

t.test('a normalized workload survives the wire and anything else is refused', async (t) => {
  const { workloadFromWire } = await import('../workload/workload.ts')
  for (const f of ['service/service.yaml', 'job/job.yaml', 'web/web.yaml']) {
    const w = loadWorkloadFile(new URL(`../../examples/${f}`, import.meta.url).pathname)
    t.same(workloadFromWire(JSON.parse(JSON.stringify(w))), w, f)
  }
  const w = validateWorkload(base())
  t.throws(() => workloadFromWire(base()), InvalidWorkloadError, 'the written form is not the wire form')
  t.throws(() => workloadFromWire({ ...w, extra: 1 }), InvalidWorkloadError)
  t.throws(() => workloadFromWire({ ...w, resources: { ...w.resources, cpu: -1 } }), InvalidWorkloadError)
})

t.test('an attacker\'s non-JSON numbers (YAML .nan, .inf, -.inf) are refused in every numeric field, by name', async (t) => {
  // Each field as YAML text, so the values arrive exactly as a workload file would bring them.
  const fields: [string, (v: string) => string][] = [
    ['$.resources.cpu', (v) => `resources: {cpu: ${v}, memory: 64Mi}`],
    ['$.resources.memory', (v) => `resources: {cpu: 1, memory: ${v}}`],
    ['$.resources.gpu', (v) => `resources: {cpu: 1, memory: 64Mi, gpu: ${v}}`],
    ['$.constraints.maxPrice', (v) => `resources: {cpu: 1, memory: 64Mi}\nconstraints: {maxPrice: ${v}}`],
    ['$.constraints.minTrust', (v) => `resources: {cpu: 1, memory: 64Mi}\nconstraints: {minTrust: ${v}}`],
    ['$.constraints.maxLatencyMs', (v) => `resources: {cpu: 1, memory: 64Mi}\nconstraints: {maxLatencyMs: ${v}}`],
    ['$.service.replicas', (v) => `resources: {cpu: 1, memory: 64Mi}\nservice: {replicas: ${v}}`],
    ['$.leaseSeconds', (v) => `resources: {cpu: 1, memory: 64Mi}\nleaseSeconds: ${v}`],
    ['$.ports[0].port', (v) => `resources: {cpu: 1, memory: 64Mi}\nports: [{port: ${v}}]`],
    ['$.service.healthCheck.intervalSeconds', (v) => `resources: {cpu: 1, memory: 64Mi}\nservice: {healthCheck: {type: tcp, port: 80, intervalSeconds: ${v}}}`],
  ]
  const head = 'apiVersion: noir/v1\nkind: service\nname: web\nruntime: {type: container, image: noir/busybox:latest}\n'
  for (const [path, body] of fields) {
    for (const v of ['.nan', '.NaN', '.inf', '-.inf', '.Inf']) {
      let err: unknown
      try {
        parseWorkload(head + body(v))
      } catch (e) {
        err = e
      }
      t.ok(err instanceof InvalidWorkloadError, `${path} = ${v} is an InvalidWorkloadError`)
      const issue = (err as InvalidWorkloadError).issues?.find((i) => i.path === path)
      t.ok(issue, `${path} = ${v} names the field (got ${JSON.stringify((err as InvalidWorkloadError).issues)})`)
    }
  }
  const job = 'apiVersion: noir/v1\nkind: job\nname: j\nruntime: {type: container, image: noir/busybox:latest}\nresources: {cpu: 1, memory: 64Mi}\n'
  for (const f of ['completions', 'parallelism', 'retries', 'deadlineSeconds']) {
    t.same(issuesOf(parseWorkloadValue(`${job}job: {${f}: .nan}`)).map((i) => i.path), [`$.job.${f}`], `$.job.${f} = .nan`)
  }
})

t.test('cpu below the 10-millicore floor is refused, never counted as 0; integers beyond 2^53 are refused', async (t) => {
  for (const cpu of [1e-12, 5e-324, 0.001, 0.009, -0, 0]) {
    t.match(issuesOf({ ...base(), resources: { cpu, memory: '64Mi' } }), [{ path: '$.resources.cpu', reason: />= 0.01/ }], `cpu ${cpu}`)
  }
  t.equal(validateWorkload({ ...base(), resources: { cpu: 0.01, memory: '64Mi' } }).resources.cpu, 0.01, 'the floor itself is accepted')
  t.match(issuesOf({ ...base(), service: { replicas: 2 ** 60 } }), [{ path: '$.service.replicas', reason: /integer/ }])
  t.match(issuesOf({ ...base(), resources: { cpu: 1, memory: 2 ** 64 } }), [{ path: '$.resources.memory' }])
})

function parseWorkloadValue(text: string): unknown {
  return parseWorkloadText(text)
}

t.test('a workload naming a path on the provider\'s disk is refused at validation, by field, whatever exists there', async (t) => {
  const fields: [string, Record<string, unknown>][] = [
    ['$.runtime.module', { type: 'wasm', module: 'X' }],
    ['$.runtime.bundle', { type: 'actor', bundle: 'X' }],
    ['$.runtime.kernel', { type: 'microvm', kernel: 'X' }],
    ['$.runtime.rootfs', { type: 'microvm', kernel: 'k', rootfs: 'X' }],
    ['$.runtime.initrd', { type: 'microvm', kernel: 'k', initrd: 'X' }],
  ]
  const digest = `sha256:${'ab'.repeat(32)}`
  t.same(issuesOf({ ...base(), runtime: { type: 'microvm', kernel: digest, initrd: digest, rootfs: 'disk.img', command: ['true'] } }), [], 'a microVM may name its kernel, initramfs and disk by digest or catalog name')
  const attempts = ['../../keystore.json', '/etc/passwd', '/proc/1/environ', './x.wasm', 'a/b', '..', '%2e%2e%2fkeystore.json', 'C:\\x', '~/.noir/keystore.json', '/var/lib/noir/allocations/c-1/state/link', 'x\u0000y']
  for (const [path, runtime] of fields) {
    const reasons = new Set<string>()
    for (const a of attempts) {
      const issues = issuesOf({ ...base(), runtime: JSON.parse(JSON.stringify(runtime).replace('"X"', JSON.stringify(a))) })
      const issue = issues.find((i) => i.path === path)
      t.ok(issue, `${path} = ${JSON.stringify(a)} is refused naming the field`)
      t.match(issue?.reason, /never a path/)
      reasons.add(issue?.reason ?? '')
    }
    t.equal(reasons.size, 1, `${path}: one reason for every path, so nothing about the disk is revealed`)
  }
  // From the wire too: a normalized workload with a path is refused before a provider looks at it.
  const good = validateWorkload({ ...base(), runtime: { type: 'wasm', module: 'hello' } })
  t.throws(() => workloadFromWire({ ...good, runtime: { type: 'wasm', module: '/etc/passwd' } }), InvalidWorkloadError)
  t.equal(workloadFromWire(good).runtime.module, 'hello', 'a catalog name passes')
})

t.test('service.scale: defaults, bounds against replicas, no scale to zero on the protected lane', async (t) => {
  const zero = validateWorkload({ ...base(), service: { scale: { min: 0, max: 3 } } })
  t.same(zero.service?.scale, { min: 0, max: 3, idleSeconds: 300, targetConnections: 10 }, 'idleSeconds defaults to 300, targetConnections to 10')
  t.equal(zero.service?.replicas, 1, 'replicas stays the count started when active')
  t.same(validateWorkload({ ...base(), service: { replicas: 2, scale: { idleSeconds: 60 } } }).service?.scale, { min: 2, max: 2, idleSeconds: 60, targetConnections: 10 }, 'min and max default to replicas')
  t.notOk(validateWorkload(base()).service?.scale, 'no scale unless declared')
  t.same(workloadFromWire(zero), zero, 'a normalized workload with scale survives the wire check')

  t.match(issuesOf({ ...base(), service: { replicas: 1, scale: { min: 2, max: 3 } } }), [{ path: '$.service.scale.min', reason: /must not exceed service.replicas/ }])
  t.match(issuesOf({ ...base(), service: { replicas: 3, scale: { min: 0, max: 2 } } }), [{ path: '$.service.scale.max', reason: /at least service.replicas/ }])
  t.match(issuesOf({ ...base(), lane: 'protected', service: { scale: { min: 0, max: 4 } } }), [{ path: '$.service.scale.min', reason: /cannot scale to zero/ }])
  t.match(issuesOf({ ...base(), service: { scale: { min: -1 } } }), [{ path: '$.service.scale.min', reason: />= 0/ }])
  t.match(issuesOf({ ...base(), service: { scale: { max: 0 } } }), [{ path: '$.service.scale.max', reason: />= 1/ }])
  t.match(issuesOf({ ...base(), service: { scale: { idleSeconds: 1 } } }), [{ path: '$.service.scale.idleSeconds', reason: />= 10/ }])
  t.match(issuesOf({ ...base(), service: { scale: { min: 0, target: 5 } } }), [{ path: '$.service.scale.target', reason: /unknown field/ }])
})
