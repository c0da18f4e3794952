// Fresh peer ids cost nothing, source addresses do: a source address may bring only so many new identities
// a minute, and one whose peer broke the protocol is refused with every identity it tries next. The unit
// tests of the rule, then the attack from a network namespace of its own (its own source address) against
// a real daemon; loopback is exempt by default, so the attack must come from another address.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { AddressAdmission, sourceKey } from '../address-admission.ts'
import { requireOrSkip, netns } from '../../scripts/testing/requirements.ts'
import { NetnsLab } from '../../scripts/testing/netns.ts'
import { DaemonCluster } from '../../scripts/testing/daemons.ts'

t.test('an address brings at most N new identities a minute; loopback and allowed prefixes are exempt', async (t) => {
  let now = 1_000_000
  const a = new AddressAdmission({ maxNewIdentitiesPerMinute: 10, allow: ['127.0.0.0/8', '::1/128', '10.9.0.0/16'], now: () => now })
  const refused = Array.from({ length: 100 }, (_, i) => a.deniesIdentity('203.0.113.7', `peer-${i}`)).filter(Boolean).length
  t.equal(refused, 90, '100 fresh peer ids from one address: 10 admitted, 90 refused')
  t.notOk(a.deniesIdentity('203.0.113.7', 'peer-3'), 'an identity it already brought comes back')
  t.notOk(a.deniesIdentity('203.0.113.8', 'peer-x'), 'another address has its own allowance')
  t.notOk(a.deniesIdentity('127.0.0.1', 'peer-1000'), 'loopback is exempt')
  t.notOk(a.deniesIdentity('10.9.3.4', 'peer-1001'), 'so is an allowed prefix')
  now += 60_000
  t.notOk(a.deniesIdentity('203.0.113.7', 'peer-200'), 'a minute later the address may bring new ones again')
  t.equal(a.limits().refused['new-identities'], 90)
})

t.test('a quarantined address is refused before any handshake; IPv6 is judged by its /64', async (t) => {
  let now = 0
  const a = new AddressAdmission({ now: () => now })
  a.quarantine('198.51.100.4', 60_000)
  t.ok(a.deniesAddress('198.51.100.4'))
  t.notOk(a.deniesAddress('198.51.100.5'), 'IPv4 by /32')
  a.quarantine('2001:db8:1:2::99', 60_000)
  t.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
  t.ok(a.deniesAddress('2001:db8:1:2:ffff:ffff:ffff:ffff'), 'the whole /64 is refused')
  t.notOk(a.deniesAddress('2001:db8:1:3::1'), 'not the next /64')
  a.quarantine('127.0.0.1', 60_000)
  t.notOk(a.deniesAddress('127.0.0.1'), 'loopback is never quarantined by address (by peer id it still is)')
  now += 60_001
  t.notOk(a.deniesAddress('198.51.100.4'), 'the quarantine ends')
})

t.test('from its own address, an attacker\'s fresh identities are refused past the budget, and after a violation every identity is', async (t) => {
  if (!requireOrSkip(t, netns)) return
  const lab = NetnsLab.create(3)
  const cluster = new DaemonCluster()
  t.teardown(async () => {
    await cluster.cleanup()
    lab.destroy()
  })
  const victim = await cluster.start({ prefix: lab.prefix(0), listen: [`/ip4/${lab.node(0).ip}/tcp/0`], apiViaSocket: true, config: { maxNewIdentitiesPerMinute: 10 } as never })
  const attacker = fileURLToPath(new URL('./fixtures/identity-flood.ts', import.meta.url))
  const run = (i: number, count: number, mode: string): Record<string, unknown> => {
    const r = spawnSync(lab.prefix(i)[0]!, [...lab.prefix(i).slice(1), process.execPath, attacker, victim.multiaddrs[0]!, victim.peerId, String(count), mode], { encoding: 'utf8', timeout: 180_000 })
    const line = r.stdout.trim().split('\n').at(-1) ?? ''
    if (!line.startsWith('{')) throw new Error(`attacker failed: ${r.stderr.slice(-2000)}`)
    return JSON.parse(line) as Record<string, unknown>
  }
  const flood = run(1, 20, 'identities')
  t.comment(`20 fresh identities from ${lab.node(1).ip}: ${String(flood.admitted)} admitted`)
  t.equal(flood.admitted, 10, 'only the budget of new identities is admitted from one address')
  const status = await victim.api.get<{ admission: { refused: Record<string, number> } }>('/v1/status')
  t.ok(status.admission.refused['new-identities']! >= 10, 'the refusals are counted in the status')

  const violate = run(2, 1, 'violate')
  t.equal(violate.hungUp, true, 'the peer that broke the framing was hung up on')
  t.equal(violate.freshAdmitted, false, 'and a fresh identity from its address is refused (the address is quarantined)')
  const after = await victim.api.get<{ admission: { quarantinedAddresses: number } }>('/v1/status')
  t.equal(after.admission.quarantinedAddresses, 1, 'one address quarantined, shown in the status')
})
