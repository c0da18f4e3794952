// The gateway's OpenAPI 3.1 document (spec/gateway.md "OpenAPI"): served at /v1/openapi.json, valid for a
// stock OpenAPI validator (@seriousme/openapi-schema-validator), naming every route the gateway serves with a
// summary and its security, and the answers a client gets match it: error answers are the Problem schema
// (checked with Ajv against the document's own schema), and a body the document forbids is refused.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { Validator } from '@seriousme/openapi-schema-validator'
import { Ajv } from 'ajv'
import { openGateway } from '../gateway.ts'
import { DOCUMENTED_ROUTES } from '../http/openapi.ts'
import { smtpOnLoopback } from './mail-rig.ts'

interface Operation { summary?: string; security?: Record<string, string[]>[]; requestBody?: { content: Record<string, { schema: unknown }> }; parameters?: { name: string; in: string }[] }
interface Doc { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: { Problem: object }; securitySchemes: Record<string, unknown> } }

t.test('the OpenAPI document is valid, complete, and the answers match it', async (t) => {
  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-gateway-openapi-'))
  const gw = await openGateway({ dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/', billing: {} })
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}`
  const res = await fetch(`${base}/v1/openapi.json`)
  t.equal(res.status, 200)
  const doc = (await res.json()) as Doc
  t.equal(doc.openapi, '3.1.0')
  const verdict = await new Validator().validate(doc as never)
  t.ok(verdict.valid, `a stock validator accepts it${verdict.valid ? '' : `: ${JSON.stringify(verdict.errors).slice(0, 500)}`}`)

  const served = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort()
  t.same(served, [...DOCUMENTED_ROUTES].sort(), 'every route the gateway serves is documented, and nothing else')
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(ops)) {
      t.ok(op.summary && op.summary.length > 10, `${m} ${path} has a summary`)
      for (const p of [...path.matchAll(/\{([^}]+)\}/g)].map((x) => x[1])) t.ok(op.parameters?.some((q) => q.in === 'path' && q.name === p), `${m} ${path} declares {${p}}`)
    }
  }
  t.same(doc.paths['/v1/workloads']!.post!.security, [{ session: [] }, { apiKey: [] }], 'workloads: a session or an API key')
  t.same(doc.paths['/v1/keys']!.post!.security, [{ session: [] }], 'keys: a session only')
  t.same(doc.paths['/v1/auth/login']!.post!.security, [], 'login: nothing')
  t.ok(doc.paths['/v1/auth/signup']!.post!.requestBody?.content['application/json'], 'request bodies are the schemas fastify validates')

  // answers against the document: every error a client can get is a Problem
  const isProblem = new Ajv({ strict: false }).compile(doc.components.schemas.Problem)
  const answers = [
    await fetch(`${base}/v1/nothing`),
    await fetch(`${base}/v1/workloads`),
    await fetch(`${base}/v1/workloads`, { headers: { authorization: 'Bearer nope' } }),
    await fetch(`${base}/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'a@b.org' }) }),
    await fetch(`${base}/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'a@b.org', password: 'long enough password', admin: true }) }),
    await fetch(`${base}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":' }),
  ]
  t.same(answers.map((r) => r.status), [404, 401, 401, 400, 400, 400])
  for (const r of answers) {
    t.match(r.headers.get('content-type'), /^application\/problem\+json/)
    const body: unknown = await r.json()
    t.ok(isProblem(body), `a ${r.status} answer is a Problem: ${JSON.stringify(body)}`)
  }
})
