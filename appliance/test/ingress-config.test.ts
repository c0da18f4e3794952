// The ingress's inputs checked as an attacker or a careless owner would write them: the config section
// (ConfigError naming the field), exposure grants (InvalidExposureGrantError), open frames on the stream
// (InvalidIngressRequestError), Host names, and the workload's `public` flag.
import t from 'tap'
import { ConfigError } from '../daemon/errors.ts'
import { parseIngressConfig, routeNameOfHost } from '../ingress/config.ts'
import { checkGrant, signGrant, GRANT_TTL_MS } from '../ingress/grant.ts'
import { InvalidExposureGrantError, InvalidIngressRequestError, PortNotExposedError } from '../ingress/errors.ts'
import { parseOpenRequest, parseOpenAnswer, refusal } from '../ingress/protocol.ts'
import { problemResponse } from '../ingress/ingress-server.ts'
import { NodeKey } from '../../identity/keys.ts'
import { validateWorkload, workloadFromWire } from '../../actors/workload/workload.ts'
import { ExposureBook, backendsFor } from '../ingress/backends.ts'
import { MemoryKvStore } from '../../core/kv-store.ts'

const did = NodeKey.generate().did

t.test('a valid ingress section is read with its defaults; none means no ingress', async (t) => {
  t.equal(parseIngressConfig(undefined), undefined)
  const c = parseIngressConfig({ listen: '127.0.0.1:8080', routes: [{ name: 'web', deployment: 'web-1', port: 80, orchestrators: [did] }], tcp: [{ listen: '127.0.0.1:9000', route: 'web' }] })!
  t.same(c.listen, { host: '127.0.0.1', port: 8080 })
  t.equal(c.domain, 'localhost')
  t.same(c.routes, [{ name: 'web', deploymentId: 'web-1', port: 80, orchestrators: [did] }])
  t.same(c.tcp, [{ listen: { host: '127.0.0.1', port: 9000 }, route: 'web' }])
  t.same(parseIngressConfig({ listen: '[::1]:0' })!.listen, { host: '::1', port: 0 })
})

t.test('a bad ingress section is refused with a ConfigError naming the field', async (t) => {
  const cases: [unknown, RegExp][] = [
    ['yes', /'ingress' must be an object/],
    [{}, /ingress\.listen/],
    [{ listen: 'localhost:80' }, /ingress\.listen.*IP address/],
    [{ listen: '127.0.0.1' }, /ingress\.listen/],
    [{ listen: '127.0.0.1:70000' }, /ingress\.listen.*port/],
    [{ listen: '127.0.0.1:80', extra: 1 }, /ingress\.extra.*not a known field/],
    [{ listen: '127.0.0.1:80', domain: 'Bad Domain' }, /ingress\.domain/],
    [{ listen: '127.0.0.1:80', routes: [{ name: 'Web', deployment: 'd', port: 80 }] }, /routes\[0\]\.name/],
    [{ listen: '127.0.0.1:80', routes: [{ name: 'web', deployment: '../x/y z', port: 80 }] }, /routes\[0\]\.deployment/],
    [{ listen: '127.0.0.1:80', routes: [{ name: 'web', deployment: 'd', port: 0 }] }, /routes\[0\]\.port/],
    [{ listen: '127.0.0.1:80', routes: [{ name: 'web', deployment: 'd', port: 80, orchestrators: ['me'] }] }, /routes\[0\]\.orchestrators/],
    [{ listen: '127.0.0.1:80', routes: [{ name: 'web', deployment: 'd', port: 80, secret: 1 }] }, /routes\[0\]\.secret/],
    [{ listen: '127.0.0.1:80', routes: [{ name: 'web', deployment: 'd', port: 80 }, { name: 'web', deployment: 'e', port: 80 }] }, /routes\[1\]\.name.*twice/],
    [{ listen: '127.0.0.1:80', tcp: [{ listen: '127.0.0.1:81', route: 'nope' }] }, /tcp\[0\]\.route/],
    [{ listen: '127.0.0.1:80', rateLimit: 5 }, /ingress\.rateLimit' must be an object/],
    [{ listen: '127.0.0.1:80', rateLimit: { perUser: {} } }, /ingress\.rateLimit\.perUser.*not a known field/],
    [{ listen: '127.0.0.1:80', rateLimit: { perClient: { perSecond: 0, burst: 1 } } }, /rateLimit\.perClient\.perSecond/],
    [{ listen: '127.0.0.1:80', rateLimit: { perClient: { perSecond: Infinity, burst: 1 } } }, /rateLimit\.perClient\.perSecond/],
    [{ listen: '127.0.0.1:80', rateLimit: { perRoute: { perSecond: 1, burst: 0.5 } } }, /rateLimit\.perRoute\.burst/],
    [{ listen: '127.0.0.1:80', tls: true }, /ingress\.tls' must be an object/],
    [{ listen: '127.0.0.1:80', http2: 'yes' }, /ingress\.http2' must be true or false/],
    [{ listen: '127.0.0.1:80', tls: { selfSigned: false } }, /ingress\.tls\.selfSigned' must be true/],
    [{ listen: '127.0.0.1:80', tls: { selfSigned: true, cert: '/c' } }, /ingress\.tls\.cert.*not a known field/],
    [{ listen: '127.0.0.1:80', tls: { cert: '/c' } }, /ingress\.tls\.key' must be the path/],
    [{ listen: '127.0.0.1:80', tls: { cert: 5, key: '/k' } }, /ingress\.tls\.cert' must be the path/],
  ]
  for (const [v, why] of cases) t.throws(() => parseIngressConfig(v), { name: 'ConfigError', message: why }, JSON.stringify(v))
  t.throws(() => parseIngressConfig({}), ConfigError)
})

t.test('a Host names a route by its first label under the domain', async (t) => {
  t.equal(routeNameOfHost('web-8080.localhost:8080', 'localhost'), 'web-8080')
  t.equal(routeNameOfHost('WEB.localhost', 'localhost'), 'web')
  t.equal(routeNameOfHost('web', 'localhost'), 'web')
  t.equal(routeNameOfHost('a.b.localhost', 'localhost'), undefined)
  t.equal(routeNameOfHost('web.example.org', 'localhost'), undefined)
  t.equal(routeNameOfHost('', 'localhost'), undefined)
})

t.test('an exposure grant opens one port of one deployment, signed by its orchestrator, for a short while', async (t) => {
  const orch = NodeKey.generate()
  const other = NodeKey.generate()
  const want = { deploymentId: 'web-1', port: 8080, orchestrators: [orch.did] }
  const g = signGrant(orch, 'web-1', 8080)
  t.same(checkGrant(g, want), g)
  t.same(checkGrant(signGrant(orch, 'web-1', 8080), { ...want, orchestrators: [other.did, orch.did] }).issuer, orch.did, 'a standby that took over may sign too')
  const bad: [unknown, RegExp][] = [
    [signGrant(other, 'web-1', 8080), /does not orchestrate/],
    [{ ...signGrant(other, 'web-1', 8080), issuer: orch.did }, /signature/],
    [signGrant(orch, 'web-2', 8080), /not port 8080 of web-1/],
    [signGrant(orch, 'web-1', 8081), /not port 8080/],
    [{ ...g, expiresAt: g.expiresAt + 1 }, /signature/],
    [signGrant(orch, 'web-1', 8080, Date.now() - GRANT_TTL_MS - 1), /expired/],
    [{ ...g, sig: 'AAAA' }, /signature/],
    [{ ...g, v: 2 }, /v1/],
    [{ ...g, port: '8080' }, /wrong type/],
    [null, /v1/],
  ]
  for (const [x, why] of bad) t.throws(() => checkGrant(x, want), { name: 'InvalidExposureGrantError', message: why })
  t.throws(() => checkGrant({ ...g, issuer: 'did:key:zNotAKey' }, { ...want, orchestrators: ['did:key:zNotAKey'] }), InvalidExposureGrantError)
})

t.test('open frames: only a well-formed v1 request is read; a refusal comes back as the typed error', async (t) => {
  t.same(parseOpenRequest({ v: 1, deploymentId: 'd', contractId: 'c', port: 80 }), { v: 1, deploymentId: 'd', contractId: 'c', port: 80 })
  for (const bad of [null, [], 'x', { v: 2, deploymentId: 'd', contractId: 'c', port: 80 }, { v: 1, deploymentId: '', contractId: 'c', port: 80 }, { v: 1, deploymentId: 'd', contractId: 'a b', port: 80 }, { v: 1, deploymentId: 'd', contractId: 'c', port: 0 }, { v: 1, deploymentId: 'd', contractId: 'c', port: 80, grant: 'x' }, { v: 1, deploymentId: 'd', contractId: 'c', port: 80, bearer: 5 }, { v: 1, deploymentId: 'd', contractId: 'c', port: 80, bearer: '' }, { v: 1, deploymentId: 'd', contractId: 'c', port: 80, bearer: 'k'.repeat(6145) }]) {
    t.throws(() => parseOpenRequest(bad), InvalidIngressRequestError, JSON.stringify(bad))
  }
  t.equal(parseOpenRequest({ v: 1, deploymentId: 'd', contractId: 'c', port: 80, bearer: 'k'.repeat(6144) }).bearer, 'k'.repeat(6144), 'a bearer of up to 6144 characters is carried')
  const err = parseOpenAnswer(JSON.parse(JSON.stringify(refusal(new PortNotExposedError('d', 80, 'private')))))
  t.ok(err instanceof PortNotExposedError, 'rebuilt as its class')
  t.equal((err as PortNotExposedError).status, 403, 'with its HTTP status')
  t.equal(parseOpenAnswer({ ok: true }), undefined)
  t.ok(parseOpenAnswer({ nonsense: 1 }) instanceof InvalidIngressRequestError)
})

t.test('a refusal at the ingress is an RFC 9457 problem document with the status of its error', async (t) => {
  const r = problemResponse(new PortNotExposedError('d', 80, 'private'))
  t.match(r, /^HTTP\/1\.1 403 Forbidden\r\n/)
  t.match(r, /content-type: application\/problem\+json/)
  const body = JSON.parse(r.slice(r.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>
  t.same({ title: body.title, status: body.status, code: body.code }, { title: 'PortNotExposedError', status: 403, code: 'ERR_PORT_NOT_EXPOSED' })
  t.match(problemResponse(new Error('x')), /^HTTP\/1\.1 502 /)
})

t.test("a workload's ports are private unless it says public; the normalized form keeps `public` only when true", async (t) => {
  const base = { apiVersion: 'noir/v1', kind: 'service', name: 'web', runtime: { type: 'container', image: 'x' }, resources: { cpu: 0.1, memory: '16Mi' } }
  const w = validateWorkload({ ...base, ports: [{ port: 80, public: true }, { port: 81 }, { port: 82, public: false }] })
  t.same(w.ports, [{ port: 80, protocol: 'tcp', public: true }, { port: 81, protocol: 'tcp' }, { port: 82, protocol: 'tcp' }])
  t.same(workloadFromWire(JSON.parse(JSON.stringify(w))).ports, w.ports, 'it travels unchanged')
  t.throws(() => validateWorkload({ ...base, ports: [{ port: 80, public: 'yes' }] }), { name: 'InvalidWorkloadError' })
})

t.test('a rate limit section is read as given', async (t) => {
  const c = parseIngressConfig({ listen: '127.0.0.1:80', rateLimit: { perClient: { perSecond: 2.5, burst: 5 } } })
  t.same(c?.rateLimit, { perClient: { perSecond: 2.5, burst: 5 } })
  t.notOk(parseIngressConfig({ listen: '127.0.0.1:80' })?.rateLimit, 'no section: no limit')
})

t.test('upstreamIdleMs: whole milliseconds, 100 to an hour', async (t) => {
  t.equal(parseIngressConfig({ listen: '127.0.0.1:80' })?.upstreamIdleMs, undefined, 'absent: the default (30 s)')
  t.equal(parseIngressConfig({ listen: '127.0.0.1:80', upstreamIdleMs: 5000 })?.upstreamIdleMs, 5000)
  for (const bad of [50, 1.5, '5000', 3_600_001]) t.throws(() => parseIngressConfig({ listen: '127.0.0.1:80', upstreamIdleMs: bad }), /ingress\.upstreamIdleMs' must be whole milliseconds/, `${JSON.stringify(bad)} refused`)
})

t.test('balance: by connection unless the config says request', async (t) => {
  t.equal(parseIngressConfig({ listen: '127.0.0.1:80' })?.balance, undefined)
  t.equal(parseIngressConfig({ listen: '127.0.0.1:80', balance: 'connection' })?.balance, undefined)
  t.equal(parseIngressConfig({ listen: '127.0.0.1:80', balance: 'request' })?.balance, 'request')
  t.throws(() => parseIngressConfig({ listen: '127.0.0.1:80', balance: 'round-robin' }), /ingress\.balance' must be "connection" \(default\) or "request"/)
})

t.test('http2: on unless the config says false', async (t) => {
  t.equal(parseIngressConfig({ listen: '127.0.0.1:80' })?.http2, undefined, 'absent: on (the server takes undefined as on)')
  t.equal(parseIngressConfig({ listen: '127.0.0.1:80', http2: false })?.http2, false)
  t.equal(parseIngressConfig({ listen: '127.0.0.1:80', http2: true })?.http2, undefined)
})

t.test('the tls section: files or a self-signed certificate', async (t) => {
  t.same(parseIngressConfig({ listen: '127.0.0.1:443', tls: { selfSigned: true } })?.tls, { selfSigned: true })
  t.same(parseIngressConfig({ listen: '127.0.0.1:443', tls: { cert: '/etc/c.pem', key: '/etc/k.pem' } })?.tls, { cert: '/etc/c.pem', key: '/etc/k.pem' })
  t.notOk(parseIngressConfig({ listen: '127.0.0.1:80' })?.tls, 'no section: plain HTTP')
})

t.test("a port's access policy: hashes of keys and an issuer, checked by the schema; it reaches the ingress with the replica set", async (t) => {
  const base = { apiVersion: 'noir/v1', kind: 'service', name: 'web', runtime: { type: 'container', image: 'x' }, resources: { cpu: 0.1, memory: '16Mi' } }
  const h1 = 'b'.repeat(64)
  const h2 = 'a'.repeat(64)
  const w = validateWorkload({ ...base, ports: [{ port: 80, public: true, access: { apiKeys: [h1, h2, h1], capability: { issuer: did } } }, { port: 81 }] })
  t.same(w.ports, [{ port: 80, protocol: 'tcp', public: true, access: { apiKeys: [h2, h1], capability: { issuer: did } } }, { port: 81, protocol: 'tcp' }], 'keys sorted and deduplicated; no access where none is declared')
  t.same(workloadFromWire(JSON.parse(JSON.stringify(w))).ports, w.ports, 'it travels unchanged')
  const refused: [unknown, RegExp][] = [
    [{ apiKeys: ['my-secret-key'] }, /apiKeys/],
    [{ apiKeys: ['A'.repeat(64)] }, /apiKeys/],
    [{ apiKeys: [] }, /apiKeys/],
    [{ capability: { issuer: 'me' } }, /issuer/],
    [{ capability: {} }, /issuer/],
    [{ password: 'x' }, /password/],
    [{}, /needs apiKeys or capability/],
  ]
  for (const [access, why] of refused) {
    t.throws(() => validateWorkload({ ...base, ports: [{ port: 80, access }] }), { name: 'InvalidWorkloadError', message: why }, JSON.stringify(access))
  }
  t.throws(() => validateWorkload({ ...base, ports: [{ port: 53, protocol: 'udp', access: { apiKeys: [h1] } }] }), { message: /tcp port only/ })

  const key = NodeKey.generate()
  const book = new ExposureBook(new MemoryKvStore())
  const src = { status: () => ({ replicas: [] }) as never, workloadOf: () => w, wake: () => ({}) as never, traffic: () => undefined }
  t.same(backendsFor(src, book, key, { deploymentId: 'web-1', port: 80 }).access, { apiKeys: [h2, h1], capability: { issuer: did } }, 'the replica-set answer carries the policy')
})

t.test("a port's rate limit: the operator's bucket shape, checked by the schema; it reaches the ingress with the replica set", async (t) => {
  const base = { apiVersion: 'noir/v1', kind: 'service', name: 'web', runtime: { type: 'container', image: 'x' }, resources: { cpu: 0.1, memory: '16Mi' } }
  const rateLimit = { perClient: { perSecond: 2.5, burst: 5 }, perRoute: { perSecond: 100, burst: 200 } }
  const w = validateWorkload({ ...base, ports: [{ port: 80, public: true, rateLimit }, { port: 81 }] })
  t.same(w.ports, [{ port: 80, protocol: 'tcp', public: true, rateLimit }, { port: 81, protocol: 'tcp' }])
  t.same(workloadFromWire(JSON.parse(JSON.stringify(w))).ports, w.ports, 'it travels unchanged')
  const refused: [unknown, RegExp][] = [
    [{ perClient: { perSecond: 0, burst: 1 } }, /perSecond/],
    [{ perClient: { perSecond: 1, burst: 0.5 } }, /burst/],
    [{ perClient: { perSecond: 1 } }, /burst/],
    [{ perUser: { perSecond: 1, burst: 1 } }, /perUser/],
    [{}, /needs perClient or perRoute/],
  ]
  for (const [rl, why] of refused) t.throws(() => validateWorkload({ ...base, ports: [{ port: 80, rateLimit: rl }] }), { name: 'InvalidWorkloadError', message: why }, JSON.stringify(rl))
  t.throws(() => validateWorkload({ ...base, ports: [{ port: 53, protocol: 'udp', rateLimit }] }), { message: /tcp port only/ })
  const src = { status: () => ({ replicas: [] }) as never, workloadOf: () => w, wake: () => ({}) as never, traffic: () => undefined }
  t.same(backendsFor(src, new ExposureBook(new MemoryKvStore()), NodeKey.generate(), { deploymentId: 'web-1', port: 80 }).rateLimit, rateLimit)
})
