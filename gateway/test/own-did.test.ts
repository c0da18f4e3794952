// A customer's own did:key as the account's wallet (spec/gateway.md "Your own DID"), over real HTTP with a
// real SMTP server on loopback and node:sqlite: the binding by a signed single-use challenge, each way an
// attacker would try it (no challenge, another key's signature, a spent or expired challenge, a message for
// another gateway, a DID that is not Ed25519, a DID another account holds); then keys the customer signs and
// registers, keys the gateway can no longer make, and keys made under the old wallet that stop working.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { NodeKey } from '../../identity/keys.ts'
import { issueCapability } from '../../identity/capabilities.ts'
import { NoirClient, NoirApiError } from '../../client/noir-client.ts'
import { openGateway } from '../gateway.ts'
import { didBindingMessage } from '../wallets/did-binding.ts'
import { signedUpClient, smtpOnLoopback } from './mail-rig.ts'

const PASSWORD = 'correct horse battery staple'

t.test('binding your own did:key, and the keys that follow from it', async (t) => {
  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-own-did-'))
  const clock = { now: Date.now() }
  const gw = await openGateway({ dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/', now: () => clock.now })
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const url = `http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}`
  const account = (email: string): Promise<NoirClient> => signedUpClient(url, mail, email, PASSWORD)
  const refusal = async (p: Promise<unknown>): Promise<{ name: string; reason?: unknown; status: number }> => {
    const e = await p.then(() => undefined, (err: unknown) => err)
    if (!(e instanceof NoirApiError)) throw new Error(`expected a typed refusal, got ${String(e)}`)
    return { name: e.name, reason: (e.data as { reason?: unknown } | undefined)?.reason, status: e.status }
  }

  const ada = await account('ada@example.org')
  const mine = NodeKey.generate()
  const gatewayDid = (await gw.wallets.gatewayKey()).did
  const before = await ada.createApiKey('before', ['secrets'], 7)
  await ada.setSecret('TOKEN', 'v1')
  t.equal((await new NoirClient({ url, apiKey: before.token }).secrets()).length, 1, 'a key made under the gateway-held wallet works')

  // attacks on the binding
  t.same(await refusal(ada.bindOwnDid(mine.did, (m) => NodeKey.generate().sign(m))), { name: 'InvalidDidBindingError', reason: 'signature', status: 400 }, "another key's signature over the challenge")
  t.same(await refusal(ada.bindOwnDid(mine.did, (m) => mine.sign(Buffer.concat([Buffer.from(m), Buffer.from('x')])))), { name: 'InvalidDidBindingError', reason: 'signature', status: 400 }, 'a signature over other bytes')
  t.same(await refusal(ada.bindOwnDid(mine.did, (m) => {
    const text = Buffer.from(m).toString('utf8').replace(gatewayDid, NodeKey.generate().did)
    return mine.sign(Buffer.from(text, 'utf8'))
  })), { name: 'InvalidDidBindingError', reason: 'signature', status: 400 }, 'a signature made for another gateway')
  t.same(await refusal(ada.bindOwnDid('did:web:example.org', () => new Uint8Array(64))), { name: 'InvalidDidBindingError', reason: 'not-ed25519', status: 400 }, 'a DID that is not an Ed25519 did:key')
  t.same(await refusal(ada.bindOwnDid(mine.did, (m) => {
    clock.now += 5 * 60_000 + 1
    return mine.sign(m)
  })), { name: 'InvalidDidBindingError', reason: 'expired', status: 400 }, 'an expired challenge')
  // a challenge is spent by its first attempt: replaying a good signature after a failed attempt does not bind
  let spent: { challenge: string; account: string; gateway: string } | undefined
  t.same(await refusal(ada.bindOwnDid(mine.did, (m) => {
    const body = JSON.parse(Buffer.from(m).subarray('noir:did-binding:v1'.length + 1).toString('utf8')) as { challenge: string; account: string; gateway: string }
    spent = body
    return NodeKey.generate().sign(m)
  })), { name: 'InvalidDidBindingError', reason: 'signature', status: 400 })
  // the same account's session, by hand: a good signature over the spent challenge
  const login = await fetch(`${url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'ada@example.org', password: PASSWORD }) })
  const cookie = /noir_session=[A-Za-z0-9_-]+/.exec(login.headers.get('set-cookie') ?? '')![0]
  const replay = await fetch(`${url}/v1/wallet/did`, { method: 'PUT', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify({ did: mine.did, signature: Buffer.from(mine.sign(didBindingMessage({ ...spent!, did: mine.did }))).toString('base64url') }) })
  t.same([replay.status, ((await replay.json()) as { data?: { reason?: string } }).data?.reason], [400, 'no-challenge'], 'a good signature over a spent challenge binds nothing')

  // the binding
  const bound = await ada.bindOwnDid(mine.did, (m) => mine.sign(m))
  t.same(bound, { did: mine.did, own: true })
  t.equal(await gw.wallets.didOf((await ada.account()).id), mine.did, 'the wallet is the customer\'s own DID')
  const bob = await account('bob@example.org')
  t.same(await refusal(bob.bindOwnDid(mine.did, (m) => mine.sign(m))), { name: 'InvalidDidBindingError', reason: 'taken', status: 400 }, 'one DID, one account (even with its key)')

  // keys after the binding
  t.same(await refusal(new NoirClient({ url, apiKey: before.token }).secrets()), { name: 'InvalidApiKeyError', reason: 'signature', status: 401 }, 'a key made under the gateway-held wallet no longer works')
  t.same(await refusal(ada.createApiKey('made-here', ['secrets'])), { name: 'OwnDidWalletError', reason: undefined, status: 409 }, 'the gateway cannot make keys for a wallet it holds no key of')
  const token = await issueCapability(mine, { audience: gatewayDid, abilities: [{ can: '/noir/gateway/secrets' }], ttlMs: 7 * 86_400_000, now: clock.now })
  const registered = await ada.registerApiKey('signed-by-me', token)
  t.same([registered.name, registered.scopes], ['signed-by-me', ['secrets']])
  t.same((await new NoirClient({ url, apiKey: token }).secrets()).map((s) => s.name), ['TOKEN'], 'the key the customer signed works')
  t.same(await refusal(ada.registerApiKey('again', token)), { name: 'InvalidRequestError', reason: undefined, status: 400 }, 'registered once')
  const forged = await issueCapability(NodeKey.generate(), { audience: gatewayDid, abilities: [{ can: '/noir/gateway/secrets' }], ttlMs: 86_400_000, now: clock.now })
  t.same(await refusal(ada.registerApiKey('forged', forged)), { name: 'InvalidApiKeyError', reason: 'signature', status: 401 }, 'a token another DID signed')
  const elsewhere = await issueCapability(mine, { audience: NodeKey.generate().did, abilities: [{ can: '/noir/gateway/secrets' }], ttlMs: 86_400_000, now: clock.now })
  t.same(await refusal(ada.registerApiKey('elsewhere', elsewhere)), { name: 'InvalidApiKeyError', reason: 'signature', status: 401 }, 'a token for another audience')
  const odd = await issueCapability(mine, { audience: gatewayDid, abilities: [{ can: '/noir/node/admin' }], ttlMs: 86_400_000, now: clock.now })
  t.same(await refusal(ada.registerApiKey('odd', odd)), { name: 'InvalidRequestError', reason: undefined, status: 400 }, 'an ability that is no scope')
  const long = await issueCapability(mine, { audience: gatewayDid, abilities: [{ can: '/noir/gateway/secrets' }], ttlMs: 400 * 86_400_000, now: clock.now })
  t.same(await refusal(ada.registerApiKey('long', long)), { name: 'InvalidRequestError', reason: undefined, status: 400 }, 'longer than 365 days')
  const bobToken = await issueCapability(mine, { audience: gatewayDid, abilities: [{ can: '/noir/gateway/secrets' }], ttlMs: 86_400_000, now: clock.now + 1 })
  t.same(await refusal(bob.registerApiKey('not-his', bobToken)), { name: 'InvalidApiKeyError', reason: 'signature', status: 401 }, "a token of ada's DID registered to bob's account does not verify")
})
