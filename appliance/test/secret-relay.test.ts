// The orchestrating node's secret relay (appliance/secrets/secret-relay.ts) with real sealed boxes: only the
// provider of a live replica contract is answered, only with the secrets its workload names; what it gets
// opens only for that node and that contract; a broker (the gateway) answers through the queue and the relay
// passes its ciphertext on untouched.
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { openSealed } from '../../identity/sealed-box.ts'
import { SealedBoxError } from '../../identity/errors.ts'
import { validateWorkload } from '../../actors/workload/workload.ts'
import type { StoredContract } from '../../actors/contracts/store.ts'
import { SecretRelay } from '../secrets/secret-relay.ts'
import { SecretRefusedError, SecretUnavailableError, UnknownSecretRequestError } from '../secrets/errors.ts'
import { secretAad, type SecretRequest } from '../secrets/protocol.ts'
import { InvalidRequestError } from '../daemon/errors.ts'

const provider = NodeKey.generate()
const other = NodeKey.generate()
const workload = validateWorkload({
  apiVersion: 'noir/v1', kind: 'service', name: 'db', runtime: { type: 'container', image: 'x' }, resources: { cpu: 0.1, memory: '32Mi' },
  secrets: [{ name: 'DB_PASSWORD', env: 'PW' }],
})
const contract = (id: string, o: Partial<{ provider: string; status: StoredContract['status']; role: 'replica' | 'standby' }> = {}): StoredContract => ({
  side: 'consumer', status: o.status ?? 'active', updatedAt: 0,
  contract: { terms: { id, deploymentId: 'd1', provider: o.provider ?? provider.did, role: o.role ?? 'replica' } } as unknown as StoredContract['contract'],
})
const contracts = new Map<string, StoredContract>([
  ['c1', contract('c1')], ['c2', contract('c2')], ['ended', contract('ended', { status: 'ended' })], ['standby', contract('standby', { role: 'standby' })],
])
const relay = (own: Record<string, string> = { DB_PASSWORD: 'pw-one', OTHER: 'not-named' }, brokerTimeoutMs?: number) => new SecretRelay({
  contract: async (id) => contracts.get(id),
  workloadOf: (id) => (id === 'd1' ? workload : undefined),
  own,
  brokerWaitMs: 300,
  ...(brokerTimeoutMs ? { brokerTimeoutMs } : {}),
})

t.test('the provider of a live contract gets the secret sealed to it, for that contract only', async (t) => {
  const r = await relay().answer({ contractId: 'c1', names: ['DB_PASSWORD'] }, provider.did)
  t.equal(r.secrets.length, 1)
  const s = r.secrets[0]!
  t.notMatch(JSON.stringify(r), /pw-one/, 'the answer holds no value in clear')
  t.equal(Buffer.from(openSealed(provider, s.box, secretAad('c1', provider.did, 'DB_PASSWORD', s.version))).toString(), 'pw-one')
  t.throws(() => openSealed(provider, s.box, secretAad('c2', provider.did, 'DB_PASSWORD', s.version)), SealedBoxError, 'replayed to another allocation: does not open')
  t.throws(() => openSealed(other, s.box, secretAad('c1', other.did, 'DB_PASSWORD', s.version)), SealedBoxError, 'another node: does not open')
  t.throws(() => openSealed(provider, s.box, secretAad('c1', provider.did, 'DB_PASSWORD', s.version + 1)), SealedBoxError, 'another version: does not open')
})

t.test('everyone else is refused with SecretRefusedError, one answer for each case', async (t) => {
  const rl = relay()
  await t.rejects(rl.answer({ contractId: 'c1', names: ['DB_PASSWORD'] }, other.did), SecretRefusedError, 'a node that does not run the contract')
  await t.rejects(rl.answer({ contractId: 'nope', names: ['DB_PASSWORD'] }, provider.did), SecretRefusedError, 'no such contract')
  await t.rejects(rl.answer({ contractId: 'ended', names: ['DB_PASSWORD'] }, provider.did), SecretRefusedError, 'an ended contract')
  await t.rejects(rl.answer({ contractId: 'standby', names: ['DB_PASSWORD'] }, provider.did), SecretRefusedError, 'a standby (runs nothing)')
  await t.rejects(rl.answer({ contractId: 'c1', names: ['OTHER'] }, provider.did), SecretRefusedError, 'a secret its workload does not name')
  await t.rejects(rl.answer({ contractId: 'c1', names: [] }, provider.did), InvalidRequestError, 'no names')
  await t.rejects(rl.answer({ contractId: '../x', names: ['DB_PASSWORD'] }, provider.did), InvalidRequestError, 'a malformed id')
  const alive = setTimeout(() => undefined, 5000)
  await t.rejects(relay({}).answer({ contractId: 'c1', names: ['DB_PASSWORD'] }, provider.did), SecretUnavailableError, 'no value anywhere (after waiting for a broker)')
  clearTimeout(alive)
})

t.test('a fetch the node cannot answer itself waits for a broker that is reconnecting', async (t) => {
  const rl = new SecretRelay({ contract: async (id) => contracts.get(id), workloadOf: () => workload, own: {}, brokerWaitMs: 10_000 })
  const abort = new AbortController()
  const asked = rl.answer({ contractId: 'c1', names: ['DB_PASSWORD'] }, provider.did)
  await new Promise((r) => setTimeout(r, 100))
  const broker = (async () => {
    for await (const req of rl.follow(abort.signal)) rl.settle(req.id, { secrets: [{ name: 'DB_PASSWORD', version: 3, box: 'nsb1.late' }] })
  })()
  t.same((await asked).secrets, [{ name: 'DB_PASSWORD', version: 3, box: 'nsb1.late' }], 'answered by the broker that came')
  abort.abort()
  await broker
})

t.test('a following broker answers; the relay passes its boxes on and never needs a value', async (t) => {
  const rl = relay({})
  const abort = new AbortController()
  const seen: SecretRequest[] = []
  const broker = (async () => {
    for await (const req of rl.follow(abort.signal)) {
      seen.push(req)
      rl.settle(req.id, { secrets: [{ name: 'DB_PASSWORD', version: 7, box: 'nsb1.opaque' }] })
    }
  })()
  await new Promise((r) => setImmediate(r))
  t.equal(rl.brokers, 1)
  const r = await rl.answer({ contractId: 'c1', names: ['DB_PASSWORD'] }, provider.did)
  t.same(r.secrets, [{ name: 'DB_PASSWORD', version: 7, box: 'nsb1.opaque' }])
  t.same(seen.map((s) => [s.deploymentId, s.contractId, s.provider, s.names]), [['d1', 'c1', provider.did, ['DB_PASSWORD']]])
  t.throws(() => rl.settle('sr_nope', { unknown: true }), UnknownSecretRequestError)
  abort.abort()
  await broker
  t.equal(rl.brokers, 0)
})

t.test('a broker refusal reaches the provider typed; `unknown` falls back to the node\'s own secrets', async (t) => {
  const rl = relay()
  const abort = new AbortController()
  let n = 0
  const broker = (async () => {
    for await (const req of rl.follow(abort.signal)) rl.settle(req.id, n++ === 0 ? { error: { name: 'SecretUnavailableError', message: 'deleted' } } : { unknown: true })
  })()
  await new Promise((r) => setImmediate(r))
  await t.rejects(rl.answer({ contractId: 'c1', names: ['DB_PASSWORD'] }, provider.did), SecretUnavailableError)
  const own = await rl.answer({ contractId: 'c1', names: ['DB_PASSWORD'] }, provider.did)
  t.equal(Buffer.from(openSealed(provider, own.secrets[0]!.box, secretAad('c1', provider.did, 'DB_PASSWORD', 0))).toString(), 'pw-one')
  abort.abort()
  await broker
})

t.test('a broker that does not answer in time: SecretUnavailableError', async (t) => {
  const rl = relay({}, 200)
  const abort = new AbortController()
  const broker = (async () => {
    for await (const _ of rl.follow(abort.signal)) { /* never answers */ }
  })()
  await new Promise((r) => setImmediate(r))
  const alive = setTimeout(() => undefined, 5000) // the relay's timer does not hold a process open by itself
  await t.rejects(rl.answer({ contractId: 'c1', names: ['DB_PASSWORD'] }, provider.did), SecretUnavailableError)
  clearTimeout(alive)
  abort.abort()
  await broker
})
