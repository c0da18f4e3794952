// The gateway's secrets store and broker answers (gateway/secrets/), on the real node:sqlite store: sealed at
// rest with the account, name and version bound; versions advance one at a time; the broker seals a
// deployment's secrets to the asking provider only for names its recorded workload names, from its own
// account, and says `unknown` for deployments it did not make.
import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Sealer } from '../auth/sealed.ts'
import { GatewayStore } from '../store/gateway-store.ts'
import { TenantStore } from '../store/tenant-store.ts'
import { SecretStore } from '../secrets/secret-store.ts'
import { AccountSecrets } from '../secrets/account-secrets.ts'
import { MissingSecretError } from '../secrets/errors.ts'
import { InvalidRequestError, NotFoundError } from '../errors.ts'
import { NodeKey } from '../../identity/keys.ts'
import { openSealed } from '../../identity/sealed-box.ts'
import { secretAad } from '../../appliance/secrets/protocol.ts'

t.test('secrets at rest, and the broker\'s answers', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-account-secrets-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const store = await GatewayStore.openFile(join(dir, 'gateway.db'))
  t.teardown(async () => store.close())
  const tenants = await TenantStore.open(store.database)
  const secretStore = await SecretStore.open(store.database)
  const restarts: string[] = []
  const secrets = new AccountSecrets({ store: secretStore, sealer: Sealer.fromFile(join(dir, 'secret.key')), restart: async (id) => { restarts.push(id); return { restarted: ['c9'], failed: [] } } })
  const ada = (await store.createAccount('ada@example.org', 'x', 1))!.id
  const bob = (await store.createAccount('bob@example.org', 'x', 1))!.id
  const workload = (names: string[]) => JSON.stringify({ name: 'w', secrets: names.map((name) => ({ name, env: name })) })
  await tenants.recordCreate(ada, 'k1', workload(['DB']), 1)
  await tenants.settleCreate(ada, 'k1', 'dep-ada')
  await tenants.recordCreate(bob, 'k1', workload(['DB']), 1)
  await tenants.settleCreate(bob, 'k1', 'dep-bob')

  t.same((await secrets.put(ada, 'DB', 'ada-db-1')).version, 1)
  t.same((await secrets.put(bob, 'DB', 'bob-db-1')).version, 1, 'bob\'s DB is his own')
  const rotated = await secrets.put(ada, 'DB', 'ada-db-2')
  t.same([rotated.version, rotated.rotated], [2, [{ deploymentId: 'dep-ada', restarted: ['c9'], failed: [] }]], 'a rotation restarts the deployments naming it, of that account only')
  t.same(restarts, ['dep-ada'])
  await t.rejects(secrets.put(ada, 'bad name', 'v'), InvalidRequestError)
  await t.rejects(secrets.put(ada, 'BIG', 'é'.repeat(32 * 1024 + 1)), InvalidRequestError, 'the bound is in bytes')
  await t.rejects(secrets.remove(bob, 'NOPE'), NotFoundError)
  await t.rejects(secrets.admit(ada, ['DB', 'NOPE']), MissingSecretError)
  await t.resolves(secrets.admit(ada, ['DB']))

  // at rest: sealed; a row moved to another account does not open
  for (const f of readdirSync(dir)) {
    const text = readFileSync(join(dir, f)).toString('latin1')
    t.notOk(text.includes('ada-db') || text.includes('bob-db'), `${f} holds no value`)
  }
  const sealer = Sealer.fromFile(join(dir, 'secret.key'))
  const row = (await secretStore.get(ada, 'DB'))!
  t.throws(() => sealer.open(row.sealed, `noir:gateway-secret:v1\n${bob}\nDB\n2`), { name: 'SealError' }, 'sealed for ada, name and version')

  // the broker
  const provider = NodeKey.generate()
  const a = await secrets.answer({ id: 'r1', deploymentId: 'dep-ada', contractId: 'c1', provider: provider.did, names: ['DB'] })
  if (!('secrets' in a)) return t.fail(JSON.stringify(a))
  const s = a.secrets[0]!
  t.equal(s.version, 2)
  t.equal(Buffer.from(openSealed(provider, s.box, secretAad('c1', provider.did, 'DB', 2))).toString(), 'ada-db-2', 'ada\'s deployment gets ada\'s current value, sealed to the provider')
  t.same(await secrets.answer({ id: 'r2', deploymentId: 'dep-bob', contractId: 'c2', provider: provider.did, names: ['OTHER'] }), { error: { name: 'SecretRefusedError', message: 'deployment dep-bob does not name secret OTHER' } })
  t.same(await secrets.answer({ id: 'r3', deploymentId: 'not-ours', contractId: 'c3', provider: provider.did, names: ['DB'] }), { unknown: true })
  t.same(Object.hasOwn(await secrets.answer({ id: 'r4', deploymentId: 'dep-ada', contractId: 'c4', provider: 'did:web:x', names: ['DB'] }), 'error'), true, 'a provider that is not a did:key')
  await secrets.remove(ada, 'DB')
  t.same(await secrets.answer({ id: 'r5', deploymentId: 'dep-ada', contractId: 'c1', provider: provider.did, names: ['DB'] }), { error: { name: 'SecretUnavailableError', message: 'secret DB was deleted from the account' } })
})
