// The service ingress with real daemons (spec/ingress.md): four `noir node start` processes on 127.0.0.1, real
// libp2p, real Docker (noir/busybox: httpd for HTTP, nc for an upgraded connection). The owner's node opens an
// ingress and orchestrates a protected two-replica service placed on three worker nodes; every request goes
// from the test through the ingress, over the mesh to a provider, and to the container's loopback port there.
import t from 'tap'
import { request, type Agent } from 'node:http'
import { connect as h2connect } from 'node:http2'
import { connect } from 'node:net'
import { spawn, spawnSync } from 'node:child_process'
import { multiaddr } from '@multiformats/multiaddr'
import { DaemonCluster, NOIR_BIN, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'
import { NodeKey } from '../../identity/keys.ts'
import { createHost } from '../../p2p/host.ts'
import { INGRESS_PROTOCOL, encodeFrame, parseOpenAnswer, readFrame } from '../ingress/protocol.ts'
import { signGrant } from '../ingress/grant.ts'
import { DOWN_MS } from '../ingress/balancer.ts'
import type { ReplicaHealth, HealthEvent } from '../health/health-monitor.ts'

const IMAGE = 'noir/busybox:latest'

// The root is read-only (only /tmp and /state are writable). httpd on 8080 (and on the private 7000) answers "<slot> <container hostname>" (and /health); nc on 9000 answers an Upgrade with 101, then echoes.
const SERVE = [
  // a replica whose state dir holds `sick` stays unhealthy across restarts (the state dir is kept)
  'mkdir -p /tmp/www && echo "$NOIR_SLOT $(hostname)" > /tmp/www/index.html && { [ -f /state/sick ] || echo ok > /tmp/www/health; }',
  `printf '#!/bin/sh\\nwhile read -r l; do l=$(printf "%%s" "$l" | tr -d "\\\\r"); [ -z "$l" ] && break; done\\nprintf "HTTP/1.1 101 Switching Protocols\\\\r\\\\nUpgrade: echo\\\\r\\\\nConnection: Upgrade\\\\r\\\\n\\\\r\\\\n"\\nexec cat\\n' > /tmp/up.sh`,
  'nc -ll -p 9000 -e sh /tmp/up.sh &',
  'httpd -p 7000 -h /tmp/www',
  'exec httpd -f -p 8080 -h /tmp/www',
].join('\n')

interface Answer {
  status: number
  body: string
  type: string | undefined
  /** The client's local port: one per connection. */
  localPort: number | undefined
}

function get(port: number, host: string, o: { agent?: Agent; path?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: o.path ?? '/', headers: { host }, agent: o.agent ?? false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim(), type: res.headers['content-type'], localPort: res.socket?.localPort }))
    })
    req.setTimeout(15_000, () => req.destroy(new Error('no answer in 15 s')))
    req.on('error', reject)
    req.end()
  })
}

/** `noir --home HOME ARGS...` (asynchronously: the test's event loop keeps serving its own sockets). */
function noir(home: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [NOIR_BIN, '--home', home, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (c: Buffer) => (out += c.toString()))
    p.stderr.on('data', (c: Buffer) => (out += c.toString()))
    p.on('close', (code) => resolve({ code, out }))
  })
}

function containersOf(slot: string): string[] {
  const r = spawnSync('docker', ['ps', '-q', '--filter', `label=noir.slot=${slot}`, '--filter', 'status=running'], { encoding: 'utf8' })
  return r.stdout.split('\n').filter((l) => l.trim())
}

t.test('a service reached through an ingress on another node: spread, upgrade, exposure, attacks, health, failover', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const { removeNodeContainers } = await import('../../cli/commands/demo.ts')
  const cluster = new DaemonCluster()
  t.teardown(async () => {
    const dids = cluster.daemons.map((d) => d.did)
    await cluster.cleanup()
    await removeNodeContainers(dids)
  })
  const orchestration = { beatMs: 200, bidWindowMs: 600 }
  const share = 'cpu=1,memory=1GiB,disk=2GiB,gpu=0'
  const owner = await cluster.start({ config: { share, orchestration: { ...orchestration, labels: { role: 'owner' } }, ingress: { listen: '127.0.0.1:0' } } as never })
  const workers = await Promise.all([0, 1, 2].map(() => cluster.start({ bootstrap: owner.multiaddrs, config: { share, orchestration: { ...orchestration, labels: { role: 'worker' } } } as never })))
  const all = [owner, ...workers]
  await eventually(async () => (await owner.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 3, 30_000)
  await new Promise((r) => setTimeout(r, 1500)) // pubsub meshes

  const workload = (name: string, ports: unknown[], replicas: number, lane: string) => ({
    apiVersion: 'noir/v1', kind: 'service', name, lane,
    runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', SERVE] },
    resources: { cpu: 0.1, memory: '16Mi' },
    constraints: { labels: { role: 'worker' } },
    service: { replicas, healthCheck: { type: 'http', port: 8080, path: '/health', intervalSeconds: 0.5, timeoutSeconds: 1, failureThreshold: 2 } },
    ports,
  })
  const d = await owner.api.post<DeploymentView>('/v1/deployments', { workload: workload('web', [{ port: 8080, public: true }, { port: 9000, public: true }, { port: 7000 }], 2, 'protected') })
  const secret = await owner.api.post<DeploymentView>('/v1/deployments', { workload: workload('secret', [{ port: 8080 }], 1, 'best-effort') })
  const running = (id: string) => eventually(async () => {
    const v = await owner.api.get<DeploymentView>(`/v1/deployments/${id}`)
    return v.phase === 'running' && v.replicas.every((r) => r.state === 'running') && v
  }, 120_000, 250)
  let view = await running(d.id)
  const secretView = await running(secret.id)
  t.ok(view.replicas.every((r) => r.node !== owner.did), 'the replicas run on worker nodes, not on the ingress node')

  type Exposed = { exposure: string; endpoint: { name: string; host: string; url: string; listen: string } }
  const web = await owner.api.post<Exposed>('/v1/ingress/expose', { deploymentId: d.id, port: 8080 })
  t.equal(web.exposure, 'public')
  t.equal(web.endpoint.host, 'web-8080.localhost')
  const ingressPort = Number(web.endpoint.listen.split(':').at(-1))
  const host = web.endpoint.host

  await t.test('HTTP through the ingress reaches a ready replica, and new connections spread over both', async (t) => {
    await eventually(async () => (await get(ingressPort, host)).status === 200, 60_000, 250)
    // both replicas' checks pass (a replica the ingress found not ready is skipped for DOWN_MS after)
    await eventually(async () => {
      const h = await owner.api.get<{ replicas: { ready: boolean | null }[] }>(`/v1/ingress/deployments/${d.id}`)
      return h.replicas.length === 2 && h.replicas.every((r) => r.ready === true)
    }, 60_000, 250)
    await new Promise((r) => setTimeout(r, DOWN_MS + 100))
    const seen = new Map<string, number>()
    for (let i = 0; i < 20; i++) {
      const a = await get(ingressPort, host)
      t.equal(a.status, 200)
      seen.set(a.body, (seen.get(a.body) ?? 0) + 1)
    }
    t.comment(`answers by replica: ${JSON.stringify(Object.fromEntries(seen))}`)
    t.equal(seen.size, 2, 'both replicas answered')
    for (const n of seen.values()) t.ok(n >= 8, `each took its share (${n} of 20)`)
    const slots = [...seen.keys()].map((b) => b.split(' ')[0]).sort()
    t.same(slots, view.replicas.map((r) => r.slot).sort(), 'the answers come from the deployment\'s two slots')
  })

  await t.test('HTTP/2 (h2c): the requests of one connection spread over both replicas, each routed on its own', async (t) => {
    const session = h2connect(`http://127.0.0.1:${ingressPort}`)
    t.teardown(() => session.close())
    const answers = await Promise.all(Array.from({ length: 10 }, () => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = session.request({ ':path': '/', ':authority': host }, { endStream: true })
      let status = 0
      let body = ''
      req.on('response', (h) => (status = Number(h[':status'])))
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => resolve({ status, body }))
      req.on('error', reject)
    })))
    t.ok(answers.every((a) => a.status === 200), 'every stream answered')
    const slots = new Set(answers.map((a) => a.body.split(' ')[0]))
    t.equal(slots.size, 2, `one HTTP/2 connection reached both replicas (${[...slots].join(', ')})`)
  })

  await t.test('an upgraded connection (101, then both ways) survives through the ingress', async (t) => {
    const cli = await noir(owner.home, ['--json', 'expose', d.id, '9000'])
    t.equal(cli.code, 0, `noir expose: ${cli.out}`)
    const up = JSON.parse(cli.out) as Exposed
    t.equal(up.endpoint.host, 'web-9000.localhost')
    const s = connect({ host: '127.0.0.1', port: ingressPort })
    t.teardown(() => s.destroy())
    let got = ''
    s.setEncoding('utf8')
    s.on('data', (c: string) => (got += c))
    s.write(`GET /ws HTTP/1.1\r\nHost: ${up.endpoint.host}\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n`)
    await eventually(() => got.includes('\r\n\r\n'), 20_000, 20)
    t.match(got, /^HTTP\/1\.1 101 Switching Protocols/, 'the upgrade is answered by the workload')
    got = ''
    for (const msg of ['hello', 'over the mesh', 'x'.repeat(64 * 1024)]) {
      s.write(`${msg}\n`)
      await eventually(() => got.endsWith(`${msg}\n`), 20_000, 20)
      got = ''
    }
    t.pass('three messages echoed back over the upgraded connection, one of 64 KiB')
  })

  await t.test('noir endpoints and noir status show where the service is served', async (t) => {
    const e = await noir(owner.home, ['--json', 'endpoints'])
    t.equal(e.code, 0)
    const doc = JSON.parse(e.out) as { open: boolean; protocols: string[]; endpoints: { name: string; replicas: { connections: number }[]; traffic: { active: number; lastTrafficAt: string | null; idleMs: number | null } }[] }
    t.ok(doc.open)
    t.same(doc.protocols, ['http/1.1', 'h2c'], 'the listener speaks HTTP/1.1 and HTTP/2 with prior knowledge')
    t.same(doc.endpoints.map((x) => x.name).sort(), ['web-8080', 'web-9000'])
    const web8080 = doc.endpoints.find((x) => x.name === 'web-8080')!
    t.equal(web8080.replicas.length, 2, 'both replicas, as the ingress sees them')
    t.ok(web8080.replicas.every((r) => r.connections > 0), 'each took connections')
    t.equal(web8080.traffic.active, 0, 'no connection open on the route now')
    t.ok(web8080.traffic.lastTrafficAt !== null && Date.parse(web8080.traffic.lastTrafficAt) <= Date.now(), `the route's last traffic is known (${web8080.traffic.lastTrafficAt})`)
    t.ok((web8080.traffic.idleMs ?? -1) >= 0, `its idle time is counted (${web8080.traffic.idleMs} ms)`)
    const human = await noir(owner.home, ['endpoints'])
    t.match(human.out, /speaking http\/1\.1, h2c/)
    t.match(human.out, new RegExp(`web-8080\\.localhost:${ingressPort}/ .* port 8080 {2}\\(idle \\d+ s\\)`), 'the human listing shows how long the route has been idle')
    const st = await noir(owner.home, ['status', d.id])
    t.match(st.out, /replica 0: running .* ready \(HTTP 200\)/, 'each replica\'s health, as its provider reports it')
    t.match(st.out, /port 8080: public/)
    t.match(st.out, /port 7000: private/)
    t.match(st.out, new RegExp(`endpoint: http://web-8080\\.localhost:${ingressPort}/`))
  })

  await t.test('a private port cannot be reached; opened by its owner, it is (through a signed grant)', async (t) => {
    const priv = await owner.api.post<Exposed>('/v1/ingress/expose', { deploymentId: d.id, port: 7000 })
    t.equal(priv.exposure, 'private')
    const a = await get(ingressPort, priv.endpoint.host)
    t.equal(a.status, 403)
    t.equal(a.type, 'application/problem+json')
    t.equal(JSON.parse(a.body).title, 'PortNotExposedError')
    const unknown = await get(ingressPort, 'nothing-here.localhost')
    t.equal(unknown.status, 404)
    t.equal(JSON.parse(unknown.body).title, 'UnknownRouteError')
    const opened = await owner.api.post<Exposed>('/v1/ingress/expose', { deploymentId: d.id, port: 7000, public: true })
    t.equal(opened.exposure, 'opened')
    const b = await get(ingressPort, priv.endpoint.host)
    t.equal(b.status, 200, 'the providers accept the orchestrator\'s grant and forward to the opened port')
    t.match(b.body, new RegExp(`^${d.id}/`), 'answered by a replica of the deployment')
    await owner.api.post<Exposed>('/v1/ingress/expose', { deploymentId: d.id, port: 7000, public: false })
    await eventually(async () => (await get(ingressPort, priv.endpoint.host)).status === 403, 10_000, 100)
    t.pass('closed again: refused once the ingress asked the orchestrator again')
  })

  await t.test('an attacker on the mesh asking a provider directly is refused with typed errors', async (t) => {
    const key = NodeKey.generate()
    const mallory = await createHost({ privateKey: key.toLibp2pPrivateKey(), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, natTraversal: false })
    await mallory.start()
    t.teardown(() => mallory.stop())
    const victimReplica = secretView.replicas[0]!
    const victim = all.find((n) => n.did === victimReplica.node)!
    const webOnVictim = view.replicas.find((r) => r.node === victim.did)
    const ask = async (frame: unknown): Promise<Error | undefined> => {
      const stream = await mallory.dialProtocol(multiaddr(victim.multiaddrs[0]!), INGRESS_PROTOCOL)
      stream.send(frame instanceof Uint8Array ? frame : encodeFrame(frame))
      const answer = parseOpenAnswer(await readFrame(stream, 10_000))
      stream.abort(new Error('done'))
      return answer
    }
    const secretContract = victimReplica.contractId!
    const cases: [string, unknown, string][] = [
      ['a private port of a running contract', { v: 1, deploymentId: secret.id, contractId: secretContract, port: 8080 }, 'PortNotExposedError'],
      ["another deployment's contract under a public deployment's id", { v: 1, deploymentId: d.id, contractId: secretContract, port: 8080 }, 'ContractNotServingError'],
      ['a forged deployment id', { v: 1, deploymentId: 'forged', contractId: secretContract, port: 8080 }, 'ContractNotServingError'],
      ['a forged contract id', { v: 1, deploymentId: d.id, contractId: 'c-0000', port: 8080 }, 'ContractNotServingError'],
      ['a port the workload does not declare', { v: 1, deploymentId: secret.id, contractId: secretContract, port: 22 }, 'PortNotExposedError'],
      ['a grant signed by the attacker', { v: 1, deploymentId: secret.id, contractId: secretContract, port: 8080, grant: signGrant(key, secret.id, 8080) }, 'InvalidExposureGrantError'],
      ['a grant of the right orchestrator for another port', { v: 1, deploymentId: secret.id, contractId: secretContract, port: 8080, grant: { ...signGrant(key, secret.id, 8081), issuer: owner.did } }, 'InvalidExposureGrantError'],
      ['a frame that is not an open request', { hello: 'world' }, 'InvalidIngressRequestError'],
    ]
    if (webOnVictim) cases.push(["a public deployment's contract with another deployment's id", { v: 1, deploymentId: secret.id, contractId: webOnVictim.contractId!, port: 8080 }, 'ContractNotServingError'])
    for (const [what, frame, name] of cases) {
      const err = await ask(frame)
      t.equal(err?.name, name, `${what}: ${name} (${err?.message})`)
    }
    // a node that does not orchestrate the deployment learns nothing of its replicas' health
    const stranger = all.find((n) => n.did !== owner.did && n.did !== victim.did)!
    const told = await stranger.api.post<{ reply?: { ready: unknown; detail: string }[] }>('/v1/actor/send', { to: `${victim.did}/ingress`, behavior: '/noir/ingress/readiness', body: { contractIds: [secretContract] }, ask: true })
    t.same(told.reply?.map((r) => r.ready), [null], `another node asking a replica's health is told nothing (${JSON.stringify(told)})`)
    const big = Buffer.alloc(8); big.writeUInt32BE(1 << 20, 0)
    t.equal((await ask(big))?.name, 'InvalidIngressRequestError', 'an oversized frame is refused before it is read')
  })

  await t.test('a failing health check takes a replica out of rotation, restarts it, and brings it back', async (t) => {
    const r0 = view.replicas[0]!
    const provider = all.find((n) => n.did === r0.node)!
    const [cid] = containersOf(r0.slot)
    t.ok(cid, 'the replica\'s container runs')
    spawnSync('docker', ['exec', cid!, 'sh', '-c', 'touch /state/sick && rm /tmp/www/health'])
    const out = await eventually(async () => {
      const h = await provider.api.get<{ replicas: ReplicaHealth[] }>('/v1/health')
      const mine = h.replicas.find((x) => x.contractId === r0.contractId)
      return mine && !mine.ready && mine
    }, 20_000, 50)
    t.comment(`not ready: ${out.detail}`)
    // while it is out (and sick across its restarts), every new connection goes to the other replica
    const during = new Set<string>()
    for (let i = 0; i < 6; i++) {
      const a = await get(ingressPort, host)
      t.equal(a.status, 200)
      during.add(a.body.split(' ')[0]!)
    }
    t.notOk(during.has(r0.slot), `no answer came from the unhealthy replica (${[...during].join(', ')})`)
    const seenByOwner = (await owner.api.get<{ replicas: { index: number; ready: boolean | null; detail: string }[] }>(`/v1/ingress/deployments/${d.id}`)).replicas.find((x) => x.index === r0.index)
    t.equal(seenByOwner?.ready, false, `the orchestrator's status shows it not ready (${seenByOwner?.detail})`)
    // healed: whichever instance runs now gets its health back
    const back = await eventually(async () => {
      for (const c of containersOf(r0.slot)) spawnSync('docker', ['exec', c, 'sh', '-c', 'rm -f /state/sick; echo ok > /tmp/www/health'])
      const h = await provider.api.get<{ replicas: ReplicaHealth[]; events: HealthEvent[] }>('/v1/health')
      const mine = h.replicas.find((x) => x.contractId === r0.contractId)
      return mine?.ready && mine.restarts >= 1 && h
    }, 60_000, 300)
    const kinds = back.events.filter((e) => e.contractId === r0.contractId).map((e) => e.kind)
    t.comment(`events: ${kinds.join(', ')}`)
    t.ok(kinds.indexOf('not-ready') < kinds.indexOf('restart') && kinds.indexOf('restart') < kinds.lastIndexOf('ready'), 'not ready, restarted, ready again')
    const after = await eventually(async () => {
      const seen = new Set<string>()
      for (let i = 0; i < 6; i++) seen.add((await get(ingressPort, host)).body.split(' ')[0]!)
      return seen.has(r0.slot) && seen
    }, 30_000, 200)
    t.ok(after.has(r0.slot), 'the restarted replica answers again')
    const st = await noir(owner.home, ['status', d.id])
    t.match(st.out, new RegExp(`replica ${r0.index}: running .* ready \\(HTTP 200\\)`), 'noir status shows it ready again')
  })

  await t.test('scale to zero: idle for its time, the service stops; the next request is held through a cold start, answered, and it scales back to zero', async (t) => {
    const z = await owner.api.post<DeploymentView>('/v1/deployments', { workload: { ...workload('zero', [{ port: 8080, public: true }], 1, 'best-effort'), service: { ...workload('zero', [], 1, 'best-effort').service, scale: { min: 0, max: 1, idleSeconds: 10 } } } })
    const first = await running(z.id)
    const slot = first.replicas[0]!.slot
    const exposed = await owner.api.post<Exposed>('/v1/ingress/expose', { deploymentId: z.id, port: 8080 })
    const zhost = exposed.endpoint.host
    await eventually(async () => (await get(ingressPort, zhost)).status === 200, 60_000, 250)
    t.pass('it answers while it runs')
    const idle = async (): Promise<DeploymentView> => eventually(async () => {
      const v = await owner.api.get<DeploymentView>(`/v1/deployments/${z.id}`)
      return v.phase === 'idle' && v.replicas.every((r) => r.state === 'stopped') && v
    }, 60_000, 250)
    const slept = await idle()
    t.match(slept.events.map((e) => e.msg).join('\n'), /no traffic for 1\d s: scaling to zero/, 'after its idle time without traffic it scales to zero')
    await eventually(async () => containersOf(slot).length === 0, 30_000, 250)
    t.pass('its container is gone (the capacity released)')

    const t0 = Date.now()
    const cold = await get(ingressPort, zhost)
    const heldMs = Date.now() - t0
    t.equal(cold.status, 200, `the first request at zero is held through the cold start and answered (${heldMs} ms)`)
    t.match(cold.body, new RegExp(`^${slot} `), 'by the slot, running again')
    const woke = await owner.api.get<DeploymentView>(`/v1/deployments/${z.id}`)
    t.equal(woke.coldStarts.length, 1, 'the cold start is recorded')
    t.ok(woke.coldStarts[0]!.ms > 0 && woke.coldStarts[0]!.ms <= heldMs, `cold start ${woke.coldStarts[0]!.ms} ms (the request was held ${heldMs} ms)`)
    t.comment(`cold start from zero (container, wake to running): ${woke.coldStarts[0]!.ms} ms; first request held ${heldMs} ms`)
    t.equal(woke.coldStarts[0]!.by, owner.did, 'woken by the ingress')
    t.equal(containersOf(slot).length, 1)

    const again = await idle()
    t.ok(again.history.filter((h) => h.phase === 'idle').length >= 2, 'idle again, it scales back to zero')
    await eventually(async () => containersOf(slot).length === 0, 30_000, 250)
    await owner.api.post(`/v1/deployments/${z.id}/stop`)
    t.equal((await owner.api.get<DeploymentView>(`/v1/deployments/${z.id}`)).phase, 'stopped', 'a service at zero stops at once')
  })

  await t.test('scale out: more connections open through the ingress than a replica should carry, and a second replica is placed; scale in while requests go on', async (t) => {
    const base = workload('burst', [{ port: 8080, public: true }, { port: 9000, public: true }], 1, 'best-effort')
    const b = await owner.api.post<DeploymentView>('/v1/deployments', { workload: { ...base, service: { ...base.service, scale: { min: 1, max: 2, idleSeconds: 10, targetConnections: 1 } } } })
    await running(b.id)
    const exposed = await owner.api.post<Exposed>('/v1/ingress/expose', { deploymentId: b.id, port: 9000 })
    const web = await owner.api.post<Exposed>('/v1/ingress/expose', { deploymentId: b.id, port: 8080 })
    // three long-lived (upgraded) connections through the ingress: httpd closes each connection, nc's upgrade keeps it
    const held: ReturnType<typeof connect>[] = []
    const open = async (): Promise<void> => {
      const s = connect({ host: '127.0.0.1', port: ingressPort })
      held.push(s)
      t.teardown(() => s.destroy())
      let got = ''
      s.setEncoding('utf8')
      s.on('data', (c: string) => (got += c))
      s.write(`GET /ws HTTP/1.1\r\nHost: ${exposed.endpoint.host}\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n`)
      await eventually(() => got.startsWith('HTTP/1.1 101'), 30_000, 50)
    }
    await eventually(async () => {
      await open()
      return true
    }, 60_000, 500)
    await open()
    await open()
    t.pass('three connections open through the ingress')
    const out = await eventually(async () => {
      const v = await owner.api.get<DeploymentView>(`/v1/deployments/${b.id}`)
      return v.phase === 'running' && v.replicas.length === 2 && v.replicas.every((r) => r.state === 'running') && v
    }, 60_000, 250)
    t.equal(out.desired, 2, 'scaled out to its max of two (three connections, one per replica wanted)')
    t.match(out.events.map((e) => e.msg).join('\n'), /3 connection\(s\) open through the ingresses: scaling out from 1 to 2[^]*scaled out: 2 replica\(s\) running \d+ ms after the decision/)

    // the held connections close; requests go on (one at a time): after idleSeconds with one replica enough, it scales in
    for (const s of held) s.destroy()
    let ok = 0
    const failed: string[] = []
    const going = { on: true }
    const traffic = (async () => {
      while (going.on) {
        const r = await get(ingressPort, web.endpoint.host).catch((err: Error) => ({ status: 0, body: err.message }))
        if (r.status === 200) ok++
        else failed.push(`${r.status} ${r.body.slice(0, 80)}`)
        await new Promise((res) => setTimeout(res, 50))
      }
    })()
    const after = await eventually(async () => {
      const v = await owner.api.get<DeploymentView>(`/v1/deployments/${b.id}`)
      return v.replicas.length === 1 && v
    }, 90_000, 250)
    await new Promise((res) => setTimeout(res, 1000))
    going.on = false
    await traffic
    t.equal(after.phase, 'running', 'running on one replica')
    t.equal(after.desired, 1)
    t.match(after.events.map((e) => e.msg).join('\n'), /scaling in from 2 to 1[^]*slot \S+\/1 retired \(scaled in\)/, 'the events say it scaled in')
    t.comment(`requests during the scale-in: ${ok} answered, ${failed.length} failed${failed.length ? `: ${failed.slice(0, 3).join(' | ')}` : ''}`)
    t.ok(ok > 20, 'requests went on through it')
    t.equal(failed.length, 0, 'none failed (the retiring replica was drained before it stopped)')
    await owner.api.post(`/v1/deployments/${b.id}/stop`)
  })

  await t.test('kill -9 of a provider: requests keep succeeding through the failover', async (t) => {
    view = await owner.api.get<DeploymentView>(`/v1/deployments/${d.id}`)
    const victimReplica = view.replicas[1]!
    const victim = all.find((n) => n.did === victimReplica.node) as DaemonHandle
    let ok = 0
    let failed = 0
    const failures: string[] = []
    const loop = { on: true }
    const bodies: string[] = []
    const load = (async () => {
      while (loop.on) {
        try {
          const a = await get(ingressPort, host)
          if (a.status === 200) {
            ok++
            bodies.push(a.body)
          } else {
            failed++
            failures.push(`${a.status} ${a.body.slice(0, 160)}`)
          }
        } catch (err) {
          failed++
          failures.push((err as Error).message)
        }
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    await new Promise((r) => setTimeout(r, 1000))
    const before = ok
    const killedAt = Date.now()
    await victim.kill()
    const moved = await eventually(async () => {
      const v = await owner.api.get<DeploymentView>(`/v1/deployments/${d.id}`)
      const r = v.replicas.find((x) => x.slot === victimReplica.slot)
      return r?.state === 'running' && r.node !== victim.did && r
    }, 60_000, 100)
    const movedAt = Date.now()
    // the replacement answers through the ingress (its container has a new hostname)
    const oldBodies = new Set(bodies)
    await eventually(() => bodies.some((b) => b.startsWith(victimReplica.slot) && !oldBodies.has(b)), 60_000, 100)
    const okAt = ok
    await new Promise((r) => setTimeout(r, 1000))
    loop.on = false
    await load
    t.comment(`kill -9 at 0 ms; slot placed again on ${moved.node} at ${movedAt - killedAt} ms; ${ok} requests answered (${before} before the kill), ${failed} failed during the failover${failures.length ? `: ${failures.slice(0, 3).join(' | ')}` : ''}`)
    t.ok(ok > okAt, 'requests kept succeeding after the failover')
    t.ok(failed <= 3, `at most the requests in flight at the kill failed (${failed})`)
  })
})
