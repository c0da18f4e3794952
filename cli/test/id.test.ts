// `noir id new` / `noir id show`, run as real processes: identity creation, refusal to overwrite, passphrase
// handling, and no key material in anything the command prints.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { toString } from 'uint8arrays'
import { Keystore, keystorePath } from '../../identity/index.ts'
import { file, requireOrSkip } from '../../scripts/testing/requirements.ts'

const bin = join(dirname(fileURLToPath(import.meta.url)), '../bin/noir.js')

interface Run { code: number; stdout: string; stderr: string }

/** Runs `node cli/bin/noir.js ...args` with a clean environment plus `env`, stdin closed (no TTY). */
function noir(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base: NodeJS.ProcessEnv = { ...process.env }
  delete base.NOIR_HOME
  delete base.NOIR_PASSPHRASE
  delete base.NOIR_DEBUG
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bin, ...args], { env: { ...base, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) })
    })
    child.stdin?.end()
  })
}

function tempHome(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'noir-cli-id-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'home')
}

const PASS = { NOIR_PASSPHRASE: 'cli test passphrase' }

t.test('noir id new creates an encrypted identity and id show prints the same DID, peer id and key', async (t) => {
  const home = tempHome(t)
  const created = await noir(['--home', home, 'id', 'new', '--json'], PASS)
  t.equal(created.code, 0, created.stderr)
  const c = JSON.parse(created.stdout) as { did: string; peerId: string; publicKeyMultibase: string }
  t.match(c.did, /^did:key:z6Mk/)
  t.match(c.peerId, /^12D3KooW/)
  t.equal(c.publicKeyMultibase, c.did.slice('did:key:'.length))
  t.equal(statSync(keystorePath(home)).mode & 0o777, 0o600)
  const shown = await noir(['id', 'show', '--json'], { NOIR_HOME: home }) // no passphrase needed, home from NOIR_HOME
  t.equal(shown.code, 0, shown.stderr)
  t.same(JSON.parse(shown.stdout), c)
  const text = await noir(['--home', home, 'id', 'show'])
  t.match(text.stdout, new RegExp(`did:\\s+${c.did}`))
  t.match(text.stdout, new RegExp(`peer id:\\s+${c.peerId}`))
  t.equal((await Keystore.load(home, PASS.NOIR_PASSPHRASE)).did, c.did)
})

t.test('noir id new refuses to overwrite an identity without --force', async (t) => {
  const home = tempHome(t)
  const first = JSON.parse((await noir(['--home', home, '--json', 'id', 'new'], PASS)).stdout) as { did: string }
  const again = await noir(['--home', home, 'id', 'new'], PASS)
  t.equal(again.code, 1)
  t.equal(again.stderr.trim().split('\n').length, 1, 'one error line')
  t.match(again.stderr, /IdentityExistsError.*--force/)
  t.equal(Keystore.publicDid(home), first.did, 'the old key is untouched')
  const forced = await noir(['--home', home, '--json', 'id', 'new', '--force'], PASS)
  t.equal(forced.code, 0, forced.stderr)
  t.not((JSON.parse(forced.stdout) as { did: string }).did, first.did)
})

t.test('without NOIR_PASSPHRASE and without a terminal, noir id new fails with NoPassphraseError', async (t) => {
  const home = tempHome(t)
  const r = await noir(['--home', home, 'id', 'new'])
  t.equal(r.code, 1)
  t.match(r.stderr, /NoPassphraseError: .*NOIR_PASSPHRASE/)
  t.notOk(Keystore.exists(home))
})

t.test('id show without an identity, and bad options, are one clear error line', async (t) => {
  const home = tempHome(t)
  const r = await noir(['--home', home, 'id', 'show'])
  t.equal(r.code, 1)
  t.match(r.stderr, /^noir: NoIdentityError: .*noir id new/)
  const bad = await noir(['--home', home, 'id', 'new', '--bogus'], PASS)
  t.equal(bad.code, 2)
  t.match(bad.stderr, /^noir: UsageError/)
  const help = await noir(['id', 'new', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Usage: noir id new/)
})

t.test('no command output or error ever contains the key, in hex, base64, base64url or base58', async (t) => {
  const home = tempHome(t)
  const other = tempHome(t)
  const outputs: Run[] = []
  outputs.push(await noir(['--home', home, 'id', 'new'], PASS))
  outputs.push(await noir(['--home', other, '--json', 'id', 'new'], PASS))
  const otherDid = Keystore.publicDid(other)
  outputs.push(await noir(['--home', home, 'id', 'show']))
  outputs.push(await noir(['--home', home, '--json', 'id', 'show']))
  outputs.push(await noir(['--home', home, 'id', 'new'], { ...PASS, NOIR_DEBUG: '1' }))
  const issued = await noir(['--home', home, 'cap', 'issue', '--to', otherDid, '--can', '/noir/deploy'], PASS)
  outputs.push(issued)
  outputs.push(await noir(['--home', home, '--json', 'cap', 'issue', '--to', otherDid, '--can', '/noir'], PASS))
  outputs.push(await noir(['--home', home, 'cap', 'verify', issued.stdout.trim()]))
  outputs.push(await noir(['--home', home, 'cap', 'revoke', issued.stdout.trim()], PASS))
  outputs.push(await noir(['--home', home, 'cap', 'issue', '--to', otherDid, '--can', '/x'], { NOIR_PASSPHRASE: 'wrong', NOIR_DEBUG: '1' }))
  t.equal(issued.code, 0, issued.stderr)
  const all = outputs.map((o) => o.stdout + o.stderr).join('\n')
  t.ok(all.includes(Keystore.publicDid(home)), 'the output did contain the public DID')
  const seed = (await Keystore.load(home, PASS.NOIR_PASSPHRASE)).exportSeed()
  for (const enc of ['hex', 'base16upper', 'base64', 'base64url', 'base58btc'] as const) {
    t.notOk(all.includes(toString(seed, enc)), `seed in ${enc} is nowhere in the output`)
  }
  t.notOk(all.includes(toString(seed, 'base64').slice(0, 20)), 'not even a base64 prefix of the seed')
})

t.test('on a terminal, noir id new asks for the passphrase twice without echoing it', async (t) => {
  // util-linux `script` gives the command a real pseudo-terminal (Debian: bsdutils, an essential package).
  if (!requireOrSkip(t, file('/usr/bin/script', 'util-linux script, to run the command on a pseudo-terminal'))) return
  const home = tempHome(t)
  const secret = 'typed-on-a-tty-42'
  const base: NodeJS.ProcessEnv = { ...process.env }
  delete base.NOIR_PASSPHRASE
  delete base.NOIR_HOME
  const child = spawn('/usr/bin/script', ['-q', '-c', `${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} --home ${JSON.stringify(home)} id new`, '/dev/null'], { env: base, stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill() })
  let out = ''
  let answered = 0
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    // answer each prompt only once it is shown (raw, no-echo mode is on by then)
    const prompts = (out.match(/assphrase: /g) ?? []).length
    while (answered < prompts) {
      answered++
      child.stdin.write(secret + '\r')
    }
  })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  child.stdin.destroy()
  t.equal(code, 0, out)
  t.equal(answered, 2, 'asked twice')
  t.match(out, /Created a new identity/)
  t.notOk(out.includes(secret), 'the passphrase is never echoed')
  t.equal((await Keystore.load(home, secret)).did, Keystore.publicDid(home))
})
