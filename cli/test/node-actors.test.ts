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

t.test("noir node actors lists the node's actors with their logic, state, mailbox depth and restarts", async (t) => {
  const node = await cluster.start()
  const r = noir(node.home, 'node', 'actors', '--json')
  t.equal(r.code, 0, r.err)
  const doc = JSON.parse(r.out) as { did: string; actors: HostedActorNode[] }
  t.equal(doc.did, node.did)
  const at = (path: string): HostedActorNode | undefined => doc.actors.find((a) => a.address === `${node.did}/${path}`)
  // the market and orchestrator machines have no states of their own: their state value is {}
  t.same(at('market'), { kind: 'actor', address: `${node.did}/market`, logic: 'noir-market', state: {}, status: 'active', mailbox: 0, restarts: 0, children: [] })
  t.same(at('orchestrator'), { kind: 'actor', address: `${node.did}/orchestrator`, logic: 'noir-orchestrator', state: {}, status: 'active', mailbox: 0, restarts: 0, children: [] })
  t.match(at('node'), { logic: 'noir-node', state: {}, status: 'active', mailbox: 0, restarts: 0 })
  t.same(doc, await node.api.get('/v1/node/actors'), 'the document of GET /v1/node/actors, unchanged')
  const stranger = new ApiClient({ url: node.api.url, token: 'not-the-token' })
  await t.rejects(stranger.get('/v1/node/actors'), { name: 'UnauthorizedError', status: 401 }, 'the route takes the bearer token, as every route does')

  const text = noir(node.home, 'node', 'actors')
  t.equal(text.code, 0, text.err)
  const lines = text.out.trimEnd().split('\n')
  t.match(lines[0], /^ACTOR\s+LOGIC\s+STATE\s+STATUS\s+MAILBOX\s+RESTARTS$/)
  t.ok(lines.some((l) => new RegExp(`^${node.did}/market\\s+noir-market\\s+\\{\\}\\s+active\\s+0\\s+0$`).test(l)), 'one line per actor: address, logic, state, status, mailbox, restarts')

  const bad = noir(node.home, 'node', 'actors', '--bogus')
  t.equal(bad.code, 2, 'an unknown option is a usage error')
  t.match(bad.err, /Unknown option '--bogus'/)
})
