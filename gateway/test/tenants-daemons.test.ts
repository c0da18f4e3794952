// The gateway as its customers' orchestrator (spec/gateway.md), against three real node daemons (separate
// processes, Docker workloads) and a real SMTP server on loopback: two accounts sign up and verify by mail,
// make API keys (capability tokens from their DID wallets), deploy through the gateway, read status, logs
// (Server-Sent Events, resumable) and usage, and stop. Every tenant boundary is tried route by route as an
// attacker would: another account's deployment, a key without the scope, a key used to mint keys, a forged
// token signed by the attacker's own DID, a token with one character changed, a revoked and an expired key.
// A create interrupted between the gateway's record and the node's answer is finished on restart, once.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { eventually, runningCopies, startConnectedMesh } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { issueCapability } from '../../identity/capabilities.ts'
import { NodeKey } from '../../identity/keys.ts'
import { openGateway } from '../gateway.ts'
import { SESSION_COOKIE } from '../http/app.ts'
import { linkToken, smtpOnLoopback } from './mail-rig.ts'

const IMAGE = 'noir/busybox:latest'
const PASSWORD = 'correct horse battery staple'
const service = (name: string, word = 'tick') => ({
  apiVersion: 'noir/v1', kind: 'service', name,
  runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', `trap "exit 0" TERM; i=0; while true; do echo ${word} $i; i=$((i+1)); sleep 0.2 & wait $!; done`] },
  resources: { cpu: 0.2, memory: '32Mi' },
})

interface Answer { status: number; json: Record<string, unknown> }

t.test('the gateway runs customers\' workloads on a real mesh, and keeps each account to its own', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const { nodes } = await startConnectedMesh(t, 3, { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 600 } })
  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-gateway-tenants-'))
  const clock = { skewMs: 0 }
  const open = () => openGateway({ dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/', nodeHome: nodes[0]!.home, now: () => Date.now() + clock.skewMs })
  let gw = await open()
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const base = () => `http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}`
  const call = async (method: string, path: string, o: { body?: unknown; cookie?: string; key?: string; headers?: Record<string, string> } = {}): Promise<Answer> => {
    const r = await fetch(base() + path, {
      method,
      headers: {
        ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(o.cookie ? { cookie: `${SESSION_COOKIE}=${o.cookie}` } : {}),
        ...(o.key ? { authorization: `Bearer ${o.key}` } : {}),
        ...o.headers,
      },
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    })
    const text = await r.text()
    return { status: r.status, json: text && r.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : { text } }
  }
  const account = async (email: string): Promise<string> => {
    t.equal((await call('POST', '/v1/auth/signup', { body: { email, password: PASSWORD } })).status, 202)
    t.equal((await call('POST', '/v1/auth/verify', { body: { token: linkToken(await mail.lastMailTo(email), 'verify') } })).status, 200)
    const r = await fetch(base() + '/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) })
    return /noir_session=([A-Za-z0-9_-]+)/.exec(r.headers.get('set-cookie') ?? '')![1]!
  }
  const ada = await account('ada@example.org')
  const bob = await account('bob@example.org')

  // ---- keys: capability tokens, shown once, never listed, never stored ----
  const made = await call('POST', '/v1/keys', { cookie: ada, body: { name: 'ci', scopes: ['deploy', 'logs'], days: 30 } })
  t.equal(made.status, 201, JSON.stringify(made.json))
  const adaKey = made.json.token as string
  t.match(adaKey, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a key is a signed capability token')
  const claims = JSON.parse(Buffer.from(adaKey.split('.')[1]!, 'base64url').toString('utf8')) as { iss: string; aud: string; att: { can: string }[]; exp: number }
  t.equal(claims.iss, await gw.wallets.didOf((await call('GET', '/v1/account', { cookie: ada })).json.id as string), 'issued by the account\'s DID wallet')
  t.equal(claims.aud, (await gw.wallets.gatewayKey()).did, 'to the gateway')
  t.same(claims.att.map((a) => a.can).sort(), ['/noir/gateway/deploy', '/noir/gateway/logs'])
  const listed = await call('GET', '/v1/keys', { cookie: ada })
  t.same((listed.json.keys as { name: string; scopes: string[] }[]).map((k) => [k.name, k.scopes]), [['ci', ['deploy', 'logs']]])
  t.notOk(JSON.stringify(listed.json).includes(adaKey), 'a listing never shows the token')
  const logsOnly = (await call('POST', '/v1/keys', { cookie: ada, body: { name: 'logs', scopes: ['logs'] } })).json.token as string
  const bobKey = (await call('POST', '/v1/keys', { cookie: bob, body: { name: 'b', scopes: ['deploy', 'logs', 'usage'] } })).json.token as string
  t.equal((await call('POST', '/v1/keys', { cookie: ada, body: { name: 'x', scopes: ['root'] } })).json.name, 'InvalidRequestError', 'no scope outside the list')
  t.equal((await call('POST', '/v1/keys', { key: adaKey, body: { name: 'more', scopes: ['deploy'] } })).json.name, 'ScopeDeniedError', 'a key cannot mint keys')
  t.equal((await call('GET', '/v1/keys', { key: adaKey })).json.name, 'ScopeDeniedError', 'nor list them')

  // ---- deploy with an idempotency key; the same key again is the same deployment ----
  const first = await call('POST', '/v1/workloads', { key: adaKey, body: { workload: service('web'), idempotencyKey: 'k1' } })
  t.equal(first.status, 201, JSON.stringify(first.json))
  const id = first.json.id as string
  const again = await call('POST', '/v1/workloads', { key: adaKey, body: { workload: service('web') }, headers: { 'idempotency-key': 'k1' } })
  t.equal(again.json.id, id, 'retried with the key (as a header): the same deployment')
  t.equal((await call('POST', '/v1/workloads', { key: adaKey, body: { workload: service('web', 'tock'), idempotencyKey: 'k1' } })).json.name, 'IdempotencyConflictError', 'the key with another workload is a conflict')
  const bobs = await call('POST', '/v1/workloads', { key: bobKey, body: { workload: service('web'), idempotencyKey: 'k1' } })
  t.equal(bobs.status, 201)
  t.not(bobs.json.id, id, 'another account\'s key k1 is its own deployment')
  t.equal((await call('POST', '/v1/workloads', { key: logsOnly, body: { workload: service('nope') } })).json.name, 'ScopeDeniedError', 'a logs-only key cannot deploy')
  const bad = await call('POST', '/v1/workloads', { key: adaKey, body: { workload: { ...service('bad'), runtime: { type: 'wasm', module: '/etc/passwd' } } } })
  t.equal(bad.json.name, 'InvalidRequestError', 'a workload naming a path is refused before the node sees it')
  t.equal((await call('POST', '/v1/workloads', { key: adaKey, body: { workload: service('x'), extra: 1 } })).json.name, 'InvalidRequestError', 'unknown fields refused')

  // ---- each account sees its own ----
  const adaList = (await call('GET', '/v1/workloads', { cookie: ada })).json.workloads as { id: string }[]
  t.same(adaList.map((d) => d.id), [id], 'ada lists hers')
  t.same(((await call('GET', '/v1/workloads', { key: bobKey })).json.workloads as { id: string }[]).map((d) => d.id), [bobs.json.id], 'bob his')
  const running = await eventually(async () => {
    const v = await call('GET', `/v1/workloads/${id}`, { key: adaKey })
    return v.json.phase === 'running' && v
  }, 60_000)
  const slot = (running.json.replicas as { slot: string }[])[0]!.slot
  t.equal(runningCopies(slot), 1, 'one container runs for it')

  // ---- bob, route by route, against ada's deployment: as if it did not exist ----
  const missing = await call('GET', '/v1/workloads/no-such-thing', { key: bobKey })
  for (const [method, path] of [['GET', `/v1/workloads/${id}`], ['POST', `/v1/workloads/${id}/stop`], ['GET', `/v1/workloads/${id}/logs`], ['GET', `/v1/workloads/${id}/usage`]] as const) {
    for (const who of [{ key: bobKey }, { cookie: bob }]) {
      const r = await call(method, path, who)
      t.same([r.status, r.json.name, r.json.detail === undefined], [404, 'NotFoundError', false], `${method} ${path} by bob (${'key' in who ? 'key' : 'session'}): not found`)
    }
  }
  t.same([missing.status, missing.json.name], [404, 'NotFoundError'], 'the same answer as a deployment that does not exist')
  t.equal(runningCopies(slot), 1, 'bob\'s stop stopped nothing')

  // ---- forged, changed, revoked and unscoped keys ----
  const attacker = NodeKey.generate()
  const forged = await issueCapability(attacker, { audience: (await gw.wallets.gatewayKey()).did, abilities: [{ can: '/noir/gateway/deploy' }], ttlMs: 3_600_000 })
  t.same([(await call('GET', '/v1/workloads', { key: forged })).json.name, (await call('GET', '/v1/workloads', { key: forged })).json.data], ['InvalidApiKeyError', { reason: 'unknown' }], 'a token signed by the attacker\'s own DID')
  const flipped = adaKey.slice(0, -2) + (adaKey.at(-2) === 'A' ? 'B' : 'A') + adaKey.at(-1)
  t.equal((await call('GET', '/v1/workloads', { key: flipped })).json.name, 'InvalidApiKeyError', 'one character changed')
  t.same((await call('GET', '/v1/workloads', { key: '../../etc/passwd' })).json.data, { reason: 'malformed' }, 'not a token at all')
  t.equal((await call('GET', '/v1/workloads', { headers: { authorization: 'Basic YWRhOnB3' } })).json.name, 'InvalidRequestError', 'another auth scheme')
  t.equal((await call('GET', `/v1/workloads/${id}/usage`, { key: adaKey })).json.name, 'ScopeDeniedError', 'usage needs the usage scope')
  t.equal((await call('GET', `/v1/workloads/${id}/usage`, { cookie: ada })).status, 200, 'a session has every scope')

  // ---- logs as Server-Sent Events, resumable ----
  await eventually(async () => ((await call('GET', `/v1/workloads/${id}/logs`, { key: adaKey })).json.text as string).includes('tick 2'), 20_000)
  const sse = (await call('GET', `/v1/workloads/${id}/logs`, { key: logsOnly })).json.text as string
  const ids = [...sse.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
  t.ok(ids.length >= 3 && ids[0] === 0, 'events numbered from 0')
  t.match(sse, /event: log\ndata: \{"ts":\d+,"stream":"stdout","line":"tick 0"\}/)
  t.match(sse, /event: end/)
  const resumed = (await call('GET', `/v1/workloads/${id}/logs`, { key: adaKey, headers: { 'last-event-id': '1' } })).json.text as string
  t.equal(/^id: (\d+)$/m.exec(resumed)?.[1], '2', 'Last-Event-ID 1: the stream resumes at event 2')
  t.notMatch(resumed, /"line":"tick [01]"/, 'without the events already received')
  for (const [q, headers] of [['?replica=abc', {}], ['?replica=-1', {}], ['?replica=1.5', {}], ['?replica=100000', {}], ['', { 'last-event-id': 'abc' }], ['', { 'last-event-id': '-5' }], ['', { 'last-event-id': '1e400' }], ['', { 'last-event-id': '9007199254740993' }]] as const) {
    const bad = await call('GET', `/v1/workloads/${id}/logs${q}`, { key: adaKey, headers })
    t.same([bad.status, bad.json.name], [400, 'InvalidRequestError'], `logs${q} ${JSON.stringify(headers)}: a typed refusal, not a stream`)
  }

  // ---- revocation ----
  const keyId = (listed.json.keys as { id: string }[])[0]!.id
  t.equal((await call('DELETE', `/v1/keys/${keyId}`, { cookie: bob })).json.name, 'NotFoundError', 'bob cannot revoke ada\'s key')
  t.equal((await call('GET', '/v1/workloads', { key: adaKey })).status, 200, 'still live')
  t.equal((await call('DELETE', `/v1/keys/${keyId}`, { cookie: ada })).status, 200)
  t.same((await call('GET', '/v1/workloads', { key: adaKey })).json.data, { reason: 'revoked' }, 'a revoked key is refused')

  // ---- stop through the gateway ----
  const stopped = await call('POST', `/v1/workloads/${id}/stop`, { cookie: ada })
  t.equal(stopped.status, 200, 'ada stops her deployment')
  await eventually(() => runningCopies(slot) === 0, 30_000)
  t.pass('the container is gone')

  // ---- the store holds no token and no key in clear ----
  const dump = (await gw.store.dump()) + (await gw.tenants.dump())
  t.notOk(dump.includes(adaKey) || dump.includes(bobKey) || dump.includes(logsOnly), 'no API key token in the store (hashes only)')
  t.match(await gw.tenants.dump(), /"sealed_seed":"v1\./, 'wallet seeds sealed')

  // ---- a create the gateway recorded but never sent (it died between the two): finished on restart ----
  const adaId = (await call('GET', '/v1/account', { cookie: ada })).json.id as string
  const { workloadSpec, validateWorkload } = await import('../../actors/workload/workload.ts')
  await gw.tenants.recordCreate(adaId, 'interrupted', JSON.stringify(workloadSpec(validateWorkload(service('late')))), Date.now())
  await gw.close()
  gw = await open()
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  t.equal(await gw.resume(), 1, 'the restarted gateway finishes the one create')
  const late = ((await call('GET', '/v1/workloads', { cookie: ada })).json.workloads as { id: string; name: string }[]).find((d) => d.name === 'late')
  t.ok(late, 'and ada owns it')
  const retried = await call('POST', '/v1/workloads', { cookie: ada, body: { workload: service('late'), idempotencyKey: 'interrupted' } })
  t.equal(retried.json.id, late?.id, 'her retry with the key returns it, not a second one')
  t.equal(await gw.resume(), 0, 'nothing left to finish')
  await call('POST', `/v1/workloads/${late!.id}/stop`, { cookie: ada })
  await call('POST', `/v1/workloads/${bobs.json.id as string}/stop`, { cookie: bob })

  // ---- expiry: a one-day key, the clock a day later ----
  const shortKey = (await call('POST', '/v1/keys', { cookie: bob, body: { name: 'short', scopes: ['deploy'], days: 1 } })).json.token as string
  t.equal((await call('GET', '/v1/workloads', { key: shortKey })).status, 200)
  clock.skewMs = 86_400_000 + 1000
  t.same((await call('GET', '/v1/workloads', { key: shortKey })).json.data, { reason: 'expired' }, 'an expired key is refused')
})

t.test('without a node the workload routes answer MeshUnavailableError', async (t) => {
  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-gateway-nonode-'))
  const gw = await openGateway({ dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/' })
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}`
  const post = (path: string, body: unknown, cookie?: string) => fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...(cookie ? { cookie: `${SESSION_COOKIE}=${cookie}` } : {}) }, body: JSON.stringify(body) })
  await post('/v1/auth/signup', { email: 'c@example.org', password: PASSWORD })
  await post('/v1/auth/verify', { token: linkToken(await mail.lastMailTo('c@example.org'), 'verify') })
  const login = await post('/v1/auth/login', { email: 'c@example.org', password: PASSWORD })
  const cookie = /noir_session=([A-Za-z0-9_-]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!
  const r = await post('/v1/workloads', { workload: service('w') }, cookie)
  t.equal(r.status, 503)
  t.equal(((await r.json()) as { name: string }).name, 'MeshUnavailableError')
  t.equal((await fetch(base + '/v1/workloads')).status, 401, 'and without credentials, 401 first')
})
