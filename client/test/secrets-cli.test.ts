// Secrets through the client SDK and `noir secrets set/ls/rm` against a real gateway (no node: storing,
// listing, rotating and deleting need none): values go in, only names and versions come out, a key without
// the `secrets` scope is refused, and the CLI never takes a value on its command line.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { NOIR_BIN } from '../../scripts/testing/daemons.ts'
import { openGateway } from '../../gateway/gateway.ts'
import { linkToken, smtpOnLoopback } from '../../gateway/test/mail-rig.ts'
import { NoirApiError, NoirClient } from '../noir-client.ts'

const PASSWORD = 'correct horse battery staple'

t.test('secrets with the SDK and the CLI: set, rotate, list without values, delete', async (t) => {
  const mail = await smtpOnLoopback(t)
  const dir = mkdtempSync(join(tmpdir(), 'noir-secrets-cli-'))
  const gw = await openGateway({ dir, smtp: { host: '127.0.0.1', port: mail.port, from: 'noreply@noir.test' }, publicUrl: 'https://gw.noir.test/' })
  await gw.app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await gw.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const url = `http://127.0.0.1:${(gw.app.server.address() as AddressInfo).port}`
  const me = new NoirClient({ url })
  await me.signUp('ada@example.org', PASSWORD)
  await me.verifyEmail(linkToken(await mail.lastMailTo('ada@example.org'), 'verify'))
  await me.login('ada@example.org', PASSWORD)

  // ---- the SDK ----
  const made = await me.setSecret('API_TOKEN', 'sdk-value-1')
  t.same([made.name, made.version, made.created, made.rotated], ['API_TOKEN', 1, true, []])
  const rotated = await me.setSecret('API_TOKEN', 'sdk-value-2')
  t.same([rotated.version, rotated.created], [2, false], 'setting it again rotates it')
  const list = await me.secrets()
  t.same(list.map((s) => [s.name, s.version]), [['API_TOKEN', 2]])
  t.notMatch(JSON.stringify(list), /sdk-value/, 'a listing has no value')
  const deployOnly = await me.createApiKey('deploy', ['deploy'])
  await t.rejects(new NoirClient({ url, apiKey: deployOnly.token }).secrets(), { name: 'ScopeDeniedError' }, 'a key without the secrets scope is refused')
  const secretsKey = await me.createApiKey('secrets', ['secrets'])
  t.same((await new NoirClient({ url, apiKey: secretsKey.token }).secrets()).map((s) => s.name), ['API_TOKEN'], 'a key with it is served')
  await me.deleteSecret('API_TOKEN')
  const gone = await me.deleteSecret('API_TOKEN').catch((e: unknown) => e)
  t.ok(gone instanceof NoirApiError && gone.name === 'NotFoundError' && gone.status === 404, 'deleting it twice: NotFoundError')

  // ---- the CLI ----
  const home = mkdtempSync(join(tmpdir(), 'noir-secrets-cli-home-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const noir = (args: string[], env: Record<string, string> = {}) => new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { encoding: 'utf8', env: { ...process.env, NOIR_PASSWORD: '', NOIR_API_KEY: '', NOIR_SECRET_VALUE: '', ...env } }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })
    })
  })
  const before = await noir(['secrets', 'ls'])
  t.same([before.status, /log in first/.test(before.stderr)], [2, true], 'without a login: a usage error saying what to do')
  t.equal((await noir(['login', '--gateway', url, '--email', 'ada@example.org'], { NOIR_PASSWORD: PASSWORD })).status, 0)
  const empty = await noir(['secrets', 'set', 'DB_PASSWORD'])
  t.same([empty.status, /NOIR_SECRET_VALUE/.test(empty.stderr)], [2, true], 'no value: a usage error (a value is never an argument)')
  t.equal((await noir(['secrets', 'set', 'DB_PASSWORD', 'on-the-command-line'])).status, 2, 'a second argument is refused')
  const set = await noir(['secrets', 'set', 'DB_PASSWORD'], { NOIR_SECRET_VALUE: 'cli-value-1' })
  t.same([set.status, set.stdout.trim()], [0, 'created secret DB_PASSWORD (version 1)'], set.stderr)
  writeFileSync(join(home, 'value.txt'), 'cli-value-2')
  const again = await noir(['secrets', 'set', 'DB_PASSWORD', '--from-file', join(home, 'value.txt')])
  t.match(again.stdout, /rotated secret DB_PASSWORD \(version 2\); 0 replica\(s\) restarted/)
  const ls = await noir(['secrets', 'ls', '--json'])
  t.same((JSON.parse(ls.stdout) as { secrets: { name: string; version: number }[] }).secrets.map((s) => [s.name, s.version]), [['DB_PASSWORD', 2]])
  t.notMatch(ls.stdout + (await noir(['secrets', 'ls'])).stdout, /cli-value/, 'never printed')
  t.match((await noir(['secrets', 'rm', 'DB_PASSWORD'])).stdout, /deleted secret DB_PASSWORD/)
  const rmAgain = await noir(['secrets', 'rm', 'DB_PASSWORD'])
  t.not(rmAgain.status, 0, 'removing a missing one fails')
  t.match(rmAgain.stderr, /NotFoundError|no secret/)
})
