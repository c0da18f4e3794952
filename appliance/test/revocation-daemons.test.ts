// Revocations reach running daemons (real processes): `noir cap revoke` on the issuer's node is honoured there
// at once and, carried by pubsub, on another node that trusts the same root; a stranger's forged revocation,
// and a flood of revocations that concern nobody here, change nothing.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { DaemonCluster, eventually, NOIR_BIN, TEST_PASSPHRASE, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { bwrap, requireOrSkip, root } from '../../scripts/testing/requirements.ts'
import { canonicalJson, issueCapability, TAG_REVOKE, tokenHash } from '../../identity/index.ts'
import { NodeKey } from '../../identity/keys.ts'
import { REVOCATION_TOPIC } from '../daemon/revocations.ts'

const counter = fileURLToPath(new URL('../../examples/counter/counter.ts', import.meta.url))

function noir(home: string, args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [NOIR_BIN, '--home', home, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NOIR_PASSPHRASE: TEST_PASSPHRASE } })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

async function runCounter(d: DaemonHandle, id: string): Promise<string> {
  await d.api.post('/v1/allocations', { id, runtime: { kind: 'actor', bundle: counter }, resources: { cpu: 0.2, memory: '192MiB' } })
  await eventually(async () => (await d.api.get<{ state: string }>(`/v1/allocations/${id}`)).state === 'running', 30_000)
  return `${d.did}/alloc/${id}/workload`
}

const failure = (p: Promise<unknown>): Promise<Error> => p.then(() => new Error('it succeeded'), (e: unknown) => e as Error)

t.test('a revoked capability stops working on the issuer\'s node at once and on a trusting node once pubsub carries it', async (t) => {
  if (!requireOrSkip(t, root, bwrap)) return
  const cluster = new DaemonCluster()
  t.teardown(() => cluster.cleanup())
  const a = await cluster.start({ config: { share: 'cpu=1,memory=1GiB,disk=1GiB,gpu=0' } as never })
  const [b, c] = await Promise.all([
    cluster.start({ bootstrap: a.multiaddrs }),
    cluster.start({ bootstrap: a.multiaddrs, config: { share: 'cpu=1,memory=1GiB,disk=1GiB,gpu=0', trustedRoots: [a.did] } as never }),
  ])
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 2, 20_000)
  await new Promise((r) => setTimeout(r, 1500)) // pubsub meshes
  const onA = await runCounter(a, 'count-a')
  const onC = await runCounter(c, 'count-c')

  // A issues B a capability to increment counters (A is a trusted root on A and on C).
  const issued = noir(a.home, ['cap', 'issue', '--to', b.did, '--can', '/counter', '--ttl', '1h', '--json'])
  t.equal(issued.code, 0, issued.err)
  const token = (JSON.parse(issued.out) as { token: string }).token
  const inc = (to: string, proofs: string[] = [token]) => b.api.post<{ reply: unknown }>('/v1/actor/send', { to, behavior: '/counter/increment', body: { by: 1 }, ask: true, proofs, timeoutMs: 15_000 })
  await eventually(async () => (await inc(onA).then(() => true, () => false)), 20_000)
  await eventually(async () => (await inc(onC).then(() => true, () => false)), 20_000)
  t.pass('the token works on A and on C')

  const revoked = noir(a.home, ['cap', 'revoke', token, '--json'])
  t.equal(revoked.code, 0, revoked.err)
  t.equal((JSON.parse(revoked.out) as { token: string }).token, tokenHash(token), 'revoked through the running daemon')
  const onAErr = await failure(inc(onA))
  t.equal(onAErr.name, 'CapabilityDeniedError', 'on A at once')
  t.match(onAErr.message, /RevokedCapabilityError/, 'because it was revoked')
  const onCErr = await eventually(async () => {
    const e = await failure(inc(onC))
    return e.name === 'CapabilityDeniedError' && e
  }, 20_000, 200)
  t.match(onCErr.message, /RevokedCapabilityError/, 'and on C once the revocation arrived over pubsub')

  // A forged revocation: a stranger signs a revocation of another token of A's, which it never issued.
  const token2 = (JSON.parse(noir(a.home, ['cap', 'issue', '--to', b.did, '--can', '/counter', '--ttl', '1h', '--json']).out) as { token: string }).token
  const stranger = NodeKey.generate()
  const body = { at: Date.now(), issuer: stranger.did, token: tokenHash(token2) }
  const sig = Buffer.from(stranger.sign(Buffer.concat([Buffer.from(`${TAG_REVOKE}\0`), Buffer.from(canonicalJson(body))]))).toString('base64url')
  const before = (await c.api.get<{ revocations: unknown[] }>('/v1/revocations')).revocations.length
  await b.api.post('/v1/pubsub/publish', { topic: REVOCATION_TOPIC, body: { revocation: { ...body, sig }, token: token2 } })
  // ... and a flood of well-signed revocations of tokens nobody here trusts (B's own tokens, B revoking).
  for (let i = 0; i < 40; i++) {
    const own = await issueCapability(stranger, { audience: b.did, abilities: [{ can: `/x/${i}` }], ttlMs: 3_600_000 })
    const r = { at: Date.now(), issuer: stranger.did, token: tokenHash(own) }
    const s = Buffer.from(stranger.sign(Buffer.concat([Buffer.from(`${TAG_REVOKE}\0`), Buffer.from(canonicalJson(r))]))).toString('base64url')
    await b.api.post('/v1/pubsub/publish', { topic: REVOCATION_TOPIC, body: { revocation: { ...r, sig: s }, token: own } }).catch(() => undefined)
  }
  await new Promise((r) => setTimeout(r, 2500))
  t.equal((await c.api.get<{ revocations: unknown[] }>('/v1/revocations')).revocations.length, before, 'C kept none of them')
  t.same((await inc(onC, [token2])).reply !== undefined, true, 'the token the stranger tried to revoke still works on C')
})
