// `noir node actors` against a real daemon: the node's live actor tree, read from its ActorSystem
// (GET /v1/node/actors): the orchestration service's market and orchestrator, the built-in node actor, each
// with its logic, state, mailbox depth and restarts; text output one line per actor; the token is required;
// usage errors exit 2.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { DaemonCluster, NOIR_BIN } from '../../scripts/testing/daemons.ts'
import { ApiClient } from '../api-client.ts'
import type { HostedActorNode } from '../../core/index.ts'

const noir = (home: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [NOIR_BIN, '--home', home, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

const cluster = new DaemonCluster()
t.teardown(() => cluster.cleanup())

t.test("noir node actors lists the node's actors with their logic, state, mailbox depth, messages handled and restarts", async (t) => {
  const node = await cluster.start()
  const r = noir(node.home, 'node', 'actors', '--json')
  t.equal(r.code, 0, r.err)
  const doc = JSON.parse(r.out) as { did: string; actors: HostedActorNode[] }
  t.equal(doc.did, node.did)
  const at = (d: { actors: HostedActorNode[] }, path: string): HostedActorNode | undefined => d.actors.find((a) => a.address === `${node.did}/${path}`)
  // the market and the orchestrator's inbox are machines without states of their own: their state value is {}
  t.match(at(doc, 'market'), { kind: 'actor', logic: 'noir-market', state: {}, status: 'active', mailbox: 0, restarts: 0, children: [] })
  t.match(at(doc, 'orchestrator'), { kind: 'actor', logic: 'noir-orchestrator', state: {}, status: 'active', mailbox: 0, restarts: 0, children: [] })
  t.match(at(doc, 'failure-detector'), { kind: 'actor', logic: 'failure-detector', state: 'watching', status: 'active', restarts: 0 })
  t.match(at(doc, 'node'), { logic: 'noir-node', state: {}, status: 'active', mailbox: 0, restarts: 0 })
  t.same(doc.actors.map((a) => a.address).sort(), (await node.api.get<{ actors: HostedActorNode[] }>('/v1/node/actors')).actors.map((a) => a.address).sort(), 'the document of GET /v1/node/actors')
  const stranger = new ApiClient({ url: node.api.url, token: 'not-the-token' })
  await t.rejects(stranger.get('/v1/node/actors'), { name: 'UnauthorizedError', status: 401 }, 'the route takes the bearer token, as every route does')

  // a deployment is an actor under the orchestrator, with its machine's state (here one no node can run)
  const d = await node.api.post<{ id: string }>('/v1/deployments', {
    workload: { apiVersion: 'noir/v1', kind: 'service', name: 'too-big', runtime: { type: 'container', image: 'noir/busybox:latest' }, resources: { cpu: 512, memory: '1Gi' } },
  })
  let dep: HostedActorNode | undefined
  for (let i = 0; i < 100 && dep?.state !== 'failed'; i++) {
    await new Promise((r) => setTimeout(r, 100))
    dep = at(await node.api.get<{ actors: HostedActorNode[] }>('/v1/node/actors'), 'orchestrator')?.children.find((c) => c.kind === 'actor' && c.address === `${node.did}/orchestrator/${d.id}`) as HostedActorNode | undefined
  }
  t.match(dep, { kind: 'actor', logic: 'deployment', state: 'failed', status: 'active' }, 'the deployment actor and its state')

  const text = noir(node.home, 'node', 'actors')
  t.equal(text.code, 0, text.err)
  const lines = text.out.trimEnd().split('\n')
  t.match(lines[0], /^ACTOR\s+LOGIC\s+STATE\s+STATUS\s+MAILBOX\s+HANDLED\s+RESTARTS$/)
  t.ok(lines.some((l) => new RegExp(`^${node.did}/market\\s+noir-market\\s+\\{\\}\\s+active\\s+0\\s+\\d+\\s+0$`).test(l)), 'one line per actor: address, logic, state, status, mailbox, handled, restarts')
  t.ok(lines.some((l) => l.startsWith(`  ${node.did}/orchestrator/${d.id}`)), 'a deployment indented under the orchestrator')

  const bad = noir(node.home, 'node', 'actors', '--bogus')
  t.equal(bad.code, 2, 'an unknown option is a usage error')
  t.match(bad.err, /Unknown option '--bogus'/)
})

t.test('a message injected from pubsub reaches its actor through the mailbox: the actor tree counts it', async (t) => {
  const a = await cluster.start()
  const b = await cluster.start({ bootstrap: a.multiaddrs })
  for (let i = 0; i < 200 && (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length === 0; i++) await new Promise((r) => setTimeout(r, 100))
  await new Promise((r) => setTimeout(r, 1500)) // the pubsub mesh forms
  const handled = async (path: string): Promise<number> => (await a.api.get<{ actors: HostedActorNode[] }>('/v1/node/actors')).actors.find((x) => x.address === `${a.did}/${path}`)!.handled
  // b's liveness beats arrive on pubsub and go to a's failure detector as messages
  const beats0 = await handled('failure-detector')
  await new Promise((r) => setTimeout(r, 1500))
  t.ok((await handled('failure-detector')) > beats0, 'beats heard on pubsub were handled by the failure detector actor')
  // a fence b broadcasts reaches a's market actor as a message (fence-heard), answered there
  const market0 = await handled('market')
  for (let i = 0; i < 5; i++) await b.api.post('/v1/pubsub/publish', { topic: 'noir/fence/v1', body: { slot: `nothing-here/${i}`, epoch: 2 } })
  let market = market0
  for (let i = 0; i < 50 && market < market0 + 5; i++) {
    await new Promise((r) => setTimeout(r, 100))
    market = await handled('market')
  }
  t.ok(market >= market0 + 5, `the five fences went through the market actor's mailbox (${market0} -> ${market})`)
})
