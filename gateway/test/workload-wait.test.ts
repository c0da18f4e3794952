// The gateway's status long poll, `GET /v1/workloads/:id?until=PHASES&events=N&waitMs=N` (spec/gateway.md), over
// real HTTP with NoirClient, in front of a stand-in for the gateway's node (an HTTP server that records what it is
// asked): the wait is passed on to the node's long poll bounded and in its one spelling, bad values are the
// gateway's own 400 naming the parameter (the node never asked), another account's deployment is a 404 as
// always, a customer who goes away ends the node call too, and an account holds at most 16 waits open.
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { NoirClient, NoirApiError } from '../../client/noir-client.ts'
import { openGateway } from '../gateway.ts'
import { MAX_FOLLOWS_PER_ACCOUNT, MAX_WAITS_PER_ACCOUNT } from '../http/workload-routes.ts'
import { writeApiFile } from '../../appliance/daemon/api-file.ts'
import { signedUpClient, smtpOnLoopback } from './mail-rig.ts'

const PASSWORD = 'correct horse battery staple'
const TOKEN = 'c'.repeat(43)

t.test('the status long poll through the gateway', async (t) => {
  // the node: creates answer dep-N; a status with a query waits until told, or until the gateway hangs up
  const gets: string[] = []
  const closed: string[] = []
  let holding: ((res: ServerResponse) => void) | undefined
  let n = 0
  const node = createServer((req: IncomingMessage, res: ServerResponse) => {
    const send = (v: unknown): void => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v))
    req.resume()
    if (req.method === 'POST' && req.url === '/v1/deployments') return send({ id: `dep-${++n}`, phase: 'preparing', events: [], eventsDropped: 0 })
    if (!req.url?.startsWith('/v1/deployments/')) return send({ requests: [] }) // the gateway's own background calls
    gets.push(req.url)
    res.once('close', () => closed.push(req.url ?? ''))
    if (/\/logs\?/.test(req.url)) {
      // a log: one line, then kept open while followed (as the node's follow), ended at once otherwise
      res.writeHead(200, { 'content-type': 'application/x-ndjson' }).write(`${JSON.stringify({ ts: '2026-12-05T00:00:00Z', stream: 'stdout', line: 'hello' })}\n`)
      if (!req.url.includes('follow=1')) res.end()
      return
    }
    if (holding && req.url?.includes('until=')) return holding(res)
    send({ id: /dep-\d+/.exec(req.url ?? '')?.[0], phase: 'bidding', events: [{ at: 1, msg: 'created' }], eventsDropped: 0 })
  })
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', () => r()))
  const nodeHome = mkdtempSync(join(tmpdir(), 'noir-wait-node-'))
  writeApiFile(nodeHome, { url: `http://127.0.0.1:${(node.address() as AddressInfo).port}`, socket: '', token: TOKEN, pid: process.pid, did: 'did:key:z6MkNode', peerId: 'x', multiaddrs: [], startedAt: new Date().toISOString() })

  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-wait-gw-'))
  const gw = await openGateway({ dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/', nodeHome })
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await gw.close()
    node.closeAllConnections()
    await new Promise<void>((r) => node.close(() => r()))
    rmSync(dir, { recursive: true, force: true })
    rmSync(nodeHome, { recursive: true, force: true })
  })
  const url = `http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}`
  const account = (email: string): Promise<NoirClient> => signedUpClient(url, mail, email, PASSWORD)
  const ada = await account('ada@example.org')
  const dep = await ada.deploy({ apiVersion: 'noir/v1', kind: 'job', name: 'waits', runtime: { type: 'container', image: 'noir/busybox:latest' }, resources: { cpu: 0.1, memory: '16Mi' } })

  await ada.status(dep.id, { until: ['running', 'failed'], events: 1, waitMs: 500 })
  await ada.status(dep.id, { events: 0, waitMs: 3_600_000 })
  await ada.status(dep.id)
  t.same(gets, [
    `/v1/deployments/${dep.id}?until=running%2Cfailed&events=1&waitMs=500`,
    `/v1/deployments/${dep.id}?events=0&waitMs=60000`,
    `/v1/deployments/${dep.id}`,
  ], 'the wait reaches the node in one spelling, at most 60 s; a plain status stays plain')

  const refusal = async (q: string): Promise<{ status: number; name: string; field: unknown; detail: string }> => {
    const r = await fetch(`${url}/v1/workloads/${dep.id}?${q}`, { headers: { cookie: `noir_session=${ada.session}` } })
    const p = (await r.json()) as { name: string; detail: string; data?: { field?: unknown } }
    return { status: r.status, name: p.name, field: p.data?.field, detail: p.detail }
  }
  for (const [q, field] of [['events=-1', 'events'], ['events=two', 'events'], ['until=nope', 'until'], ['until=running&waitMs=later', 'waitMs']] as const) {
    const r = await refusal(q)
    t.same([r.status, r.name, r.field], [400, 'InvalidRequestError', field], `${q}: 400 naming ${field} (${r.detail})`)
  }
  t.equal(gets.length, 3, 'no refused wait reached the node')
  const bob = await account('bob@example.org')
  const other = await bob.status(dep.id, { until: ['running'], waitMs: 500 }).then(() => null, (e: unknown) => e)
  t.same(other instanceof NoirApiError ? [other.status, other.name] : other, [404, 'NotFoundError'], 'another account\'s deployment: 404 as always, the node never asked')
  t.equal(gets.length, 3)

  // the customer goes away while the node waits: the gateway hangs up on the node too
  let held!: () => void
  const atNode = new Promise<void>((r) => (held = r))
  holding = () => held()
  const ac = new AbortController()
  const waiting = ada.status(dep.id, { until: ['running'], waitMs: 60_000, signal: ac.signal }).then(() => 'answered', (e: unknown) => (e as Error).name)
  await atNode
  const before = closed.length
  ac.abort()
  t.equal(await waiting, 'AbortError', 'the client gave up')
  while (closed.length === before) await new Promise((r) => setTimeout(r, 10))
  t.match(closed.at(-1), /until=running/, 'and the gateway\'s call to the node ended with it (else this test times out)')

  // an account holds at most MAX_WAITS_PER_ACCOUNT waits open: one more is answered at once, as a plain status
  const parked: ServerResponse[] = []
  holding = (res) => void parked.push(res)
  const enders = Array.from({ length: MAX_WAITS_PER_ACCOUNT }, () => new AbortController())
  const open = enders.map((a) => ada.status(dep.id, { until: ['running'], waitMs: 60_000, signal: a.signal }).catch(() => null))
  while (parked.length < MAX_WAITS_PER_ACCOUNT) await new Promise((r) => setTimeout(r, 10))
  const plainBefore = gets.filter((g) => !g.includes('?')).length
  const over = await ada.status(dep.id, { until: ['running'], waitMs: 60_000 })
  t.equal(over.phase, 'bidding', `the ${MAX_WAITS_PER_ACCOUNT + 1}th wait is answered at once`)
  t.equal(gets.filter((g) => !g.includes('?')).length, plainBefore + 1, 'as a plain status of the node')
  const closedBefore = closed.length
  for (const a of enders) a.abort()
  await Promise.all(open)
  while (closed.length < closedBefore + MAX_WAITS_PER_ACCOUNT) await new Promise((r) => setTimeout(r, 10))
  holding = undefined
  const waitsBefore = gets.filter((g) => g.includes('until=')).length
  await ada.status(dep.id, { until: ['running'], waitMs: 100 })
  t.equal(gets.filter((g) => g.includes('until=')).length, waitsBefore + 1, 'once they end, a wait is a wait again')

  // an account follows at most MAX_FOLLOWS_PER_ACCOUNT log streams at once: one more is a 429 it can read
  const logs = (follow: boolean, signal?: AbortSignal): Promise<Response> =>
    fetch(`${url}/v1/workloads/${dep.id}/logs${follow ? '?follow=1' : ''}`, { headers: { cookie: `noir_session=${ada.session}` }, ...(signal ? { signal } : {}) })
  const firstEvent = async (r: Response): Promise<string> => {
    const reader = r.body!.getReader()
    const { value } = await reader.read()
    reader.releaseLock()
    return new TextDecoder().decode(value)
  }
  const followers = Array.from({ length: MAX_FOLLOWS_PER_ACCOUNT }, () => new AbortController())
  const streams = await Promise.all(followers.map((a) => logs(true, a.signal)))
  t.ok(streams.every((r) => r.status === 200), `${MAX_FOLLOWS_PER_ACCOUNT} followed`)
  t.match(await firstEvent(streams[0]!), /event: log\ndata: \{"ts":"2026-12-05T00:00:00Z","stream":"stdout","line":"hello"\}/, 'each one streaming')
  const followsAtNode = gets.filter((g) => g.includes('follow=1')).length
  const oneMore = await logs(true)
  const problem = (await oneMore.json()) as { name: string; detail: string; data?: { limit?: number } }
  t.same([oneMore.status, problem.name, problem.data?.limit], [429, 'RateLimitedError', MAX_FOLLOWS_PER_ACCOUNT], `one more: 429 (${problem.detail})`)
  t.equal(gets.filter((g) => g.includes('follow=1')).length, followsAtNode, 'and it never reached the node')
  const plain = await logs(false)
  t.equal(plain.status, 200, 'a log read without following is still answered')
  t.match(await plain.text(), /event: end/)
  const otherFollows = await fetch(`${url}/v1/workloads/${dep.id}/logs?follow=1`, { headers: { cookie: `noir_session=${bob.session}` } })
  t.equal(otherFollows.status, 404, 'another account following it: 404, as for any deployment not its own')
  await otherFollows.body?.cancel()
  const closedFollows = (): number => closed.filter((c) => c.includes('follow=1')).length
  const endedBefore = closedFollows()
  followers[0]!.abort()
  while (closedFollows() === endedBefore) await new Promise((r) => setTimeout(r, 10))
  let again: Response | undefined
  for (let i = 0; i < 100; i++) {
    again = await logs(true)
    if (again.status === 200) break
    await again.body?.cancel()
    await new Promise((r) => setTimeout(r, 20))
  }
  t.equal(again?.status, 200, 'once one ends, following is allowed again')
  await again?.body?.cancel()
  for (const a of followers) a.abort()
  for (const r of streams.slice(1)) await r.body?.cancel().catch(() => {})
})
