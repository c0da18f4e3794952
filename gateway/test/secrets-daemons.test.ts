// Secrets through the gateway (spec/secrets.md), against three real node daemons (separate processes, real
// libp2p, Docker workloads) and a real SMTP server on loopback. An account stores secrets; a container that
// names them (a variable and a file) proves it got them by printing their SHA-256 (never a value); Docker's
// store holds the file's mount but not its value; the values are then searched for in
// every file under every daemon's home, the gateway's folder, every daemon's log and every API answer the
// test received: it is nowhere. Attacks: another account lists, deletes, overwrites-into and deploys with
// it; a node that does not run the replica asks the orchestrating node for it (SecretRefusedError); a node
// that is not the orchestrator asks a provider to restart a replica. A rotation restarts the replica and the
// new value arrives.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { eventually, startConnectedMesh } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { ApiCallError } from '../../appliance/daemon/api-client.ts'
import { openGateway } from '../gateway.ts'
import { SESSION_COOKIE } from '../http/app.ts'
import { linkToken, smtpOnLoopback } from './mail-rig.ts'

const IMAGE = 'noir/busybox:latest'
const PASSWORD = 'correct horse battery staple'
const sha = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex')
const MARKER = `plain-marker-${randomBytes(9).toString('hex')}`
const OWN = `owner-${randomBytes(9).toString('hex')}`
const service = (name: string, secret = 'DB_PASSWORD', withFile = true) => ({
  apiVersion: 'noir/v1', kind: 'service', name,
  env: { PLAIN_MARKER: MARKER },
  runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', `trap "exit 0" TERM; while true; do echo "pw $(printf %s "$DB_PASSWORD" | sha256sum | cut -d" " -f1)${withFile ? ' file $(sha256sum < /run/secrets/api | cut -d" " -f1)' : ''}"; sleep 0.3 & wait $!; done`] },
  resources: { cpu: 0.2, memory: '32Mi' },
  secrets: [{ name: secret, env: 'DB_PASSWORD' }, ...(withFile ? [{ name: 'API_KEY', file: '/run/secrets/api' }] : [])],
})

interface Answer { status: number; json: Record<string, unknown>; text: string }

/** Every regular file under `dir` (sockets and the like skipped), read whole. */
function filesUnder(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name)
    try {
      if (statSync(p).isFile()) out.push(p)
    } catch {
      // gone meanwhile
    }
  }
  return out
}

t.test('a secret reaches only the container that names it, sealed to its node, and shows up nowhere else', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  // the nodes' own secrets (for deployments their owner makes without a gateway)
  const { nodes } = await startConnectedMesh(t, 3, { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 600, secrets: { OWNERS_TOKEN: OWN } } })
  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-gateway-secrets-'))
  const gw = await openGateway({ dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/', nodeHome: nodes[0]!.home })
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const answers: string[] = [] // every API answer the test received, searched at the end
  const base = `http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}`
  const call = async (method: string, path: string, o: { body?: unknown; cookie?: string; key?: string } = {}): Promise<Answer> => {
    const r = await fetch(base + path, {
      method,
      headers: {
        ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(o.cookie ? { cookie: `${SESSION_COOKIE}=${o.cookie}` } : {}),
        ...(o.key ? { authorization: `Bearer ${o.key}` } : {}),
      },
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    })
    const text = await r.text()
    answers.push(text)
    return { status: r.status, text, json: text && r.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : {} }
  }
  const account = async (email: string): Promise<string> => {
    t.equal((await call('POST', '/v1/auth/signup', { body: { email, password: PASSWORD } })).status, 202)
    t.equal((await call('POST', '/v1/auth/verify', { body: { token: linkToken(await mail.lastMailTo(email), 'verify') } })).status, 200)
    const r = await fetch(base + '/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) })
    return /noir_session=([A-Za-z0-9_-]+)/.exec(r.headers.get('set-cookie') ?? '')![1]!
  }
  const ada = await account('ada@example.org')
  const bob = await account('bob@example.org')
  const adaSecrets = (await call('POST', '/v1/keys', { cookie: ada, body: { name: 'secrets', scopes: ['secrets'] } })).json.token as string
  const adaDeploy = (await call('POST', '/v1/keys', { cookie: ada, body: { name: 'deploy', scopes: ['deploy', 'logs'] } })).json.token as string

  const V1 = `v1-${randomBytes(18).toString('hex')}`
  const V2 = `v2-${randomBytes(18).toString('hex')}`
  const FILE = `file-${randomBytes(18).toString('hex')}`

  // ---- stored: by a key with the scope only; listed without the value ----
  t.equal((await call('PUT', '/v1/secrets/DB_PASSWORD', { key: adaDeploy, body: { value: V1 } })).json.name, 'ScopeDeniedError', 'a deploy key cannot write secrets')
  const made = await call('PUT', '/v1/secrets/DB_PASSWORD', { key: adaSecrets, body: { value: V1 } })
  t.same([made.status, made.json.name, made.json.version, made.json.created], [201, 'DB_PASSWORD', 1, true], made.text)
  t.equal((await call('PUT', '/v1/secrets/API_KEY', { key: adaSecrets, body: { value: FILE } })).status, 201)
  t.equal((await call('PUT', '/v1/secrets/bad%20name', { key: adaSecrets, body: { value: 'x' } })).json.name, 'InvalidRequestError', 'names are validated')
  t.equal((await call('PUT', '/v1/secrets/BIG', { key: adaSecrets, body: { value: 'x'.repeat(64 * 1024 + 1) } })).json.name, 'InvalidRequestError', 'values are bounded')
  const listed = await call('GET', '/v1/secrets', { cookie: ada })
  t.same((listed.json.secrets as { name: string; version: number }[]).map((s) => [s.name, s.version]), [['API_KEY', 1], ['DB_PASSWORD', 1]])

  // ---- bob, as an attacker: the secret does not exist for him ----
  t.same((await call('GET', '/v1/secrets', { cookie: bob })).json.secrets, [], 'bob lists none')
  const bobDelete = await call('DELETE', '/v1/secrets/DB_PASSWORD', { cookie: bob })
  t.same([bobDelete.status, bobDelete.json.name], [404, 'NotFoundError'], 'bob cannot delete it: not found, like a missing one')
  const bobUse = await call('POST', '/v1/workloads', { cookie: bob, body: { workload: service('steal') } })
  t.same([bobUse.status, bobUse.json.name], [409, 'MissingSecretError'], 'bob cannot deploy a workload using it')
  const missing = await call('POST', '/v1/workloads', { key: adaDeploy, body: { workload: service('web', 'NOPE') } })
  t.same([missing.status, missing.json.name, (missing.json.data as { missing: string[] }).missing], [409, 'MissingSecretError', ['NOPE']], 'a missing secret is refused at admission')
  const bobOwn = await call('PUT', '/v1/secrets/DB_PASSWORD', { cookie: bob, body: { value: 'bobs-own' } })
  t.same([bobOwn.status, bobOwn.json.version], [201, 1], 'bob\'s DB_PASSWORD is his own, version 1')

  // ---- deployed: the container gets the value (it prints its hash) ----
  const dep = await call('POST', '/v1/workloads', { key: adaDeploy, body: { workload: service('db') } })
  t.equal(dep.status, 201, dep.text)
  const id = dep.json.id as string
  const running = await eventually(async () => {
    const v = await call('GET', `/v1/workloads/${id}`, { key: adaDeploy })
    return v.json.phase === 'running' && v
  }, 90_000)
  const replica = (running.json.replicas as { node: string; contractId: string }[])[0]!
  const logLines = async (): Promise<string> => {
    const r = await fetch(`${base}/v1/workloads/${id}/logs`, { headers: { authorization: `Bearer ${adaDeploy}` } })
    const text = await r.text()
    answers.push(text)
    return text
  }
  await eventually(async () => (await logLines()).includes(`pw ${sha(V1)} file ${sha(FILE)}`), 30_000, 300)
  t.pass('the container printed the hashes of the values it got (a variable and a file)')
  const slot = (running.json.replicas as { slot: string }[])[0]!.slot
  const containers = spawnSync('docker', ['ps', '-q', '--filter', `label=noir.slot=${slot}`], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.trim())
  t.equal(containers.length, 1)
  const inspect = spawnSync('docker', ['inspect', ...containers], { encoding: 'utf8' }).stdout
  t.ok(inspect.includes('/run/secrets/api') && !inspect.includes(FILE), 'Docker\'s own store has the file secret\'s mount, not its value')

  // ---- a node that does not run the replica asks for it: refused, typed ----
  const orchestrator = nodes[0]!
  const thief = nodes.find((n) => n.did !== replica.node && n.did !== orchestrator.did) ?? nodes.find((n) => n.did !== replica.node)!
  const stolen = await thief.api.post('/v1/actor/send', { to: `${orchestrator.did}/secrets`, behavior: '/noir/secrets/fetch', ask: true, body: { contractId: replica.contractId, names: ['DB_PASSWORD'] } }).catch((e: unknown) => e)
  t.ok(stolen instanceof ApiCallError && stolen.name === 'SecretRefusedError', `a node not running the replica is refused (${(stolen as Error).name})`)
  const restartByStranger = await thief.api.post('/v1/actor/send', { to: `${replica.node}/secrets`, behavior: '/noir/secrets/restart', ask: true, body: { contractId: replica.contractId } }).catch((e: unknown) => e)
  t.ok(restartByStranger instanceof ApiCallError && restartByStranger.name === 'SecretRefusedError', `a node that does not orchestrate it cannot restart the replica (${(restartByStranger as Error).name})`)

  // ---- rotated: the replica starts again and the new value arrives ----
  const rotated = await call('PUT', '/v1/secrets/DB_PASSWORD', { key: adaSecrets, body: { value: V2 } })
  t.same([rotated.status, rotated.json.version, rotated.json.created], [200, 2, false], rotated.text)
  t.same(rotated.json.rotated, [{ deploymentId: id, restarted: [replica.contractId], failed: [] }], 'the replica naming it was restarted')
  await eventually(async () => (await logLines()).includes(`pw ${sha(V2)} file ${sha(FILE)}`), 30_000, 300)
  t.pass('after the rotation the container has the new value')
  const after = await call('GET', `/v1/workloads/${id}`, { key: adaDeploy })
  t.same([after.json.phase, (after.json.replicas as { contractId: string }[])[0]!.contractId], ['running', replica.contractId], 'restarted in place: the same contract')

  // ---- deleted: a later start has nothing to receive ----
  t.equal((await call('DELETE', '/v1/secrets/DB_PASSWORD', { key: adaSecrets })).json.deleted, true)
  t.equal((await call('DELETE', '/v1/secrets/API_KEY', { key: adaSecrets })).json.deleted, true)
  t.same((await call('GET', '/v1/secrets', { cookie: ada })).json.secrets, [])
  t.equal((await call('POST', `/v1/workloads/${id}/stop`, { key: adaDeploy })).status, 200)

  // ---- a node owner deploying without the gateway: the orchestrating node seals its own config's value ----
  const own = await orchestrator.api.post<{ id: string }>('/v1/deployments', { workload: { ...service('owners', 'OWNERS_TOKEN', false), env: {} } })
  const ownLogs = async (): Promise<string> => {
    let text = ''
    for await (const l of orchestrator.api.stream<{ line?: string }>(`/v1/deployments/${own.id}/logs?replica=0`)) text += `${l.line ?? ''}\n`
    return text
  }
  await eventually(async () => (await ownLogs()).includes(`pw ${sha(OWN)}`), 60_000, 300)
  t.pass('a deployment of the node\'s owner gets the value from the orchestrating node\'s config, sealed to its provider')
  await orchestrator.api.post(`/v1/deployments/${own.id}/stop`)

  // ---- the values are nowhere in clear: stores, logs, events, answers ----
  const places: [string, string][] = []
  for (const n of nodes) {
    for (const f of filesUnder(n.home)) places.push([f, readFileSync(f).toString('latin1')])
    places.push([`${n.home} (daemon log)`, n.logs()])
  }
  for (const f of filesUnder(dir)) places.push([f, readFileSync(f).toString('latin1')])
  places.push(['API answers', answers.join('\n')])
  const events = await call('GET', `/v1/workloads/${id}`, { key: adaDeploy })
  places.push(['deployment events', JSON.stringify(events.json)])
  t.ok(places.length > 20, `searched ${places.length} files and logs`)
  for (const v of [V1, V2, FILE]) {
    const found = places.filter(([, text]) => text.includes(v)).map(([p]) => p)
    t.same(found, [], `${v.slice(0, 2)} is in none of them`)
  }
  const ownFound = places.filter(([, text]) => text.includes(OWN)).map(([p]) => p)
  t.ok(ownFound.length > 0 && ownFound.every((p) => p.endsWith('/config.json')), `the owner's value is only in the owners' config files (${ownFound.length})`)
  // the search finds what is there: the hash the workload printed, and a plain env value in the stores
  t.ok(answers.join('\n').includes(sha(V1)), 'the hash of V1, printed by the workload, is found in the answers')
  t.ok(places.some(([p, text]) => p.startsWith(nodes.find((n) => n.did === replica.node)!.home) && text.includes(MARKER)), 'a plain env value of the workload is found in the provider\'s store')
})
