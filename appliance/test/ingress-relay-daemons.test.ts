// A service whose provider sits behind NAT, reached through an ingress (spec/ingress.md, spec/wire.md
// "Relays"): three `noir node start` processes on 127.0.0.1. The relay listens on TCP; the provider and the
// ingress node listen on no transport address, only on `/p2p-circuit` through the relay, so neither can dial
// the other and DCUtR has no direct address to upgrade to: the orchestrator's bids, contract and start, and
// every byte of every request, cross the relay. The container (noir/busybox httpd) serves a small page and
// a 1 MiB file, more than libp2p's default relay limit (128 KiB per relayed connection) would let through.
import t from 'tap'
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { clusterFor, eventually } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'

const IMAGE = 'noir/busybox:latest'
const SERVE = [
  'mkdir -p /tmp/www && echo "$NOIR_SLOT $(hostname)" > /tmp/www/index.html',
  'dd if=/dev/urandom of=/tmp/www/big bs=1024 count=1024 2>/dev/null',
  "sha256sum /tmp/www/big | cut -d' ' -f1 > /tmp/www/big.sha",
  'exec httpd -f -p 8080 -h /tmp/www',
].join(' && ')

function get(port: number, host: string, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')))
    req.on('error', reject)
    req.end()
  })
}

t.test('a provider reachable only through a relay serves HTTP through an ingress on another node', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const cluster = clusterFor(t)
  const share = 'cpu=1,memory=1GiB,disk=2GiB,gpu=0'
  const orchestration = (role: string) => ({ beatMs: 200, bidWindowMs: 1000, labels: { role } })
  const relay = await cluster.start({ relay: true, config: { share, orchestration: orchestration('relay') } as never })
  const hidden = await cluster.start({ listen: ['/p2p-circuit'], bootstrap: relay.multiaddrs, config: { share, orchestration: orchestration('hidden') } as never })
  const owner = await cluster.start({ listen: ['/p2p-circuit'], bootstrap: relay.multiaddrs, config: { share, orchestration: orchestration('owner'), ingress: { listen: '127.0.0.1:0' } } as never })
  t.same([...hidden.multiaddrs, ...owner.multiaddrs].filter((m) => !m.includes('/p2p-circuit')), [], 'neither the provider nor the ingress node has a direct address')
  for (const n of [hidden, owner]) {
    await eventually(async () => (await n.api.get<{ multiaddrs: string[] }>('/v1/status')).multiaddrs.some((m) => m.includes(`/p2p/${relay.peerId}/p2p-circuit/p2p/${n.peerId}`)), 30_000, 250)
  }

  const workload = {
    apiVersion: 'noir/v1', kind: 'service', name: 'behind-nat',
    runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', SERVE] },
    resources: { cpu: 0.1, memory: '32Mi' },
    constraints: { labels: { role: 'hidden' } },
    service: { replicas: 1, healthCheck: { type: 'http', port: 8080, path: '/index.html', intervalSeconds: 0.5, timeoutSeconds: 2, failureThreshold: 3 } },
    ports: [{ port: 8080, public: true }],
  }
  // the owner learns of the hidden node from its heartbeats (gossip through the relay) before it can place there
  const d = await eventually(async () => {
    const dry = await owner.api.post<{ round: { bids: Array<{ node: string }> } }>('/v1/bids/dry-run', { workload })
    return dry.round.bids.some((b) => b.node === hidden.did) && owner.api.post<DeploymentView>('/v1/deployments', { workload })
  }, 90_000, 1000)
  const view = await eventually(async () => {
    const v = await owner.api.get<DeploymentView>(`/v1/deployments/${d.id}`)
    return v.phase === 'running' && v.replicas.every((r) => r.state === 'running') && v
  }, 120_000, 250)
  t.equal(view.replicas[0]!.node, hidden.did, 'placed on the node behind the relay (bids, contract and start crossed it)')

  const exposed = await owner.api.post<{ endpoint: { host: string; listen: string } }>('/v1/ingress/expose', { deploymentId: d.id, port: 8080 })
  const port = Number(exposed.endpoint.listen.split(':').at(-1))
  const host = exposed.endpoint.host
  const page = await eventually(async () => {
    const r = await get(port, host, '/')
    return r.status === 200 && r
  }, 60_000, 250)
  t.match(page.body.toString('utf8'), /^\S+\/0 \S+/, 'the page comes from the replica, through the ingress and the relay')

  const sha = (await get(port, host, '/big.sha')).body.toString('utf8').trim()
  const big = await get(port, host, '/big')
  t.equal(big.status, 200)
  t.equal(big.body.length, 1024 * 1024, '1 MiB through one relayed connection (libp2p\'s default relay limit is 128 KiB)')
  t.equal(createHash('sha256').update(big.body).digest('hex'), sha, 'byte for byte')

  const peersOf = async (n: typeof owner) => (await n.api.get<{ peers: Array<{ did: string; connection: string }> }>('/v1/peers')).peers
  t.equal((await peersOf(owner)).find((p) => p.did === hidden.did)?.connection, 'relayed', 'the ingress node reaches the provider through the relay only')
  t.equal((await peersOf(hidden)).find((p) => p.did === owner.did)?.connection, 'relayed', 'and the provider sees the ingress node so')

  const again = await Promise.all([0, 1, 2, 3].map(() => get(port, host, '/')))
  t.same(again.map((r) => r.status), [200, 200, 200, 200], 'concurrent requests share the circuit')
  await owner.api.post(`/v1/deployments/${d.id}/stop`)
})
