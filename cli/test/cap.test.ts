// `noir cap issue | delegate | verify | revoke`, run as real processes between two homes (two identities).
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CapabilityVerifier, Keystore } from '../../identity/index.ts'

const bin = join(dirname(fileURLToPath(import.meta.url)), '../bin/noir.js')

interface Run { code: number; stdout: string; stderr: string }

function noir(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base: NodeJS.ProcessEnv = { ...process.env }
  delete base.NOIR_HOME
  delete base.NOIR_PASSPHRASE
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bin, ...args], { env: { ...base, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) })
    })
    child.stdin?.end()
  })
}

const PASS = { NOIR_PASSPHRASE: 'cap test' }
const dir = mkdtempSync(join(tmpdir(), 'noir-cli-cap-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const A = join(dir, 'a') // the root: issues
const B = join(dir, 'b') // holds and delegates
let aDid = ''
let bDid = ''

t.before(async () => {
  const [a, b] = await Promise.all([noir(['--home', A, 'id', 'new'], PASS), noir(['--home', B, 'id', 'new'], PASS)])
  if (a.code !== 0 || b.code !== 0) throw new Error(`id new failed: ${a.stderr} ${b.stderr}`)
  aDid = Keystore.publicDid(A)
  bDid = Keystore.publicDid(B)
})

t.test('an issued token verifies against the node\'s own DID and prints its chain', async (t) => {
  const issued = await noir(['--home', A, '--json', 'cap', 'issue', '--to', bDid, '--can', '/noir/deploy', '--can', '/noir/ledger', '--ttl', '90m'], PASS)
  t.equal(issued.code, 0, issued.stderr)
  const j = JSON.parse(issued.stdout) as { token: string; issuer: string; audience: string; abilities: unknown; expiresAt: string }
  t.equal(j.issuer, aDid)
  t.equal(j.audience, bDid)
  t.same(j.abilities, [{ can: '/noir/deploy' }, { can: '/noir/ledger' }])
  t.ok(Math.abs(Date.parse(j.expiresAt) - (Date.now() + 90 * 60_000)) < 60_000, '--ttl 90m')
  const v = await noir(['--home', A, 'cap', 'verify', j.token, '--audience', bDid, '--can', '/noir/deploy/status'])
  t.equal(v.code, 0, v.stderr)
  t.match(v.stdout, /valid/)
  t.match(v.stdout, new RegExp(`1\\. ${aDid}\\n\\s+-> ${bDid}`))
  // the same token checked in-process by the library
  t.equal((await new CapabilityVerifier({ trustedRoots: [aDid] }).verify(j.token)).audience, bDid)
})

t.test('a delegation made in another home verifies with its whole chain; a widening one is refused', async (t) => {
  const root = (await noir(['--home', A, 'cap', 'issue', '--to', bDid, '--can', '/noir/deploy'], PASS)).stdout.trim()
  const d = await noir(['--home', B, 'cap', 'delegate', root, '--to', aDid, '--can', '/noir/deploy/status'], PASS)
  t.equal(d.code, 0, d.stderr)
  const v = await noir(['--home', A, '--json', 'cap', 'verify', d.stdout.trim()])
  t.equal(v.code, 0, v.stderr)
  const j = JSON.parse(v.stdout) as { valid: boolean; root: string; chain: { issuer: string; audience: string }[] }
  t.equal(j.valid, true)
  t.equal(j.root, aDid)
  t.same(j.chain.map((l) => [l.issuer, l.audience]), [[aDid, bDid], [bDid, aDid]])
  const wide = await noir(['--home', B, 'cap', 'delegate', root, '--to', aDid, '--can', '/noir'], PASS)
  t.equal(wide.code, 1)
  t.match(wide.stderr, /^noir: WideningDelegationError/)
  const long = await noir(['--home', B, 'cap', 'delegate', root, '--to', aDid, '--can', '/noir/deploy', '--ttl', '30d'], PASS)
  t.equal(long.code, 1)
  t.match(long.stderr, /^noir: OutlivesParentError/)
  const notMine = await noir(['--home', A, 'cap', 'delegate', root, '--to', bDid, '--can', '/noir/deploy'], PASS)
  t.equal(notMine.code, 1)
  t.match(notMine.stderr, /^noir: NotAudienceError/)
})

t.test('verify trusts only the node\'s DID plus config.json trustedRoots', async (t) => {
  const token = (await noir(['--home', A, 'cap', 'issue', '--to', bDid, '--can', '/noir'], PASS)).stdout.trim()
  const untrusted = await noir(['--home', B, '--json', 'cap', 'verify', token])
  t.equal(untrusted.code, 1)
  const j = JSON.parse(untrusted.stdout) as { valid: boolean; error: { name: string } }
  t.equal(j.valid, false)
  t.equal(j.error.name, 'UntrustedRootError')
  writeFileSync(join(B, 'config.json'), JSON.stringify({ trustedRoots: [aDid] }))
  t.teardown(() => rmSync(join(B, 'config.json'), { force: true }))
  const trusted = await noir(['--home', B, 'cap', 'verify', token])
  t.equal(trusted.code, 0, trusted.stderr)
})

t.test('a revoked token no longer verifies (revocations live in $HOME/revocations)', async (t) => {
  const token = (await noir(['--home', A, 'cap', 'issue', '--to', bDid, '--can', '/noir'], PASS)).stdout.trim()
  const r = await noir(['--home', A, 'cap', 'revoke', token], PASS)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /revoked token sha256 [0-9a-f]{64}/)
  const v = await noir(['--home', A, 'cap', 'verify', token])
  t.equal(v.code, 1)
  t.match(v.stderr, /RevokedCapabilityError/)
  const stranger = await noir(['--home', B, 'cap', 'revoke', token], PASS)
  t.equal(stranger.code, 1, 'the audience may not revoke')
  t.match(stranger.stderr, /InvalidRevocationError/)
})

t.test('bad input is one clear line: usage errors exit 2, garbage tokens exit 1', async (t) => {
  const [noTo, badTtl, badTo, garbage, badPath] = await Promise.all([
    noir(['--home', A, 'cap', 'issue', '--can', '/noir'], PASS),
    noir(['--home', A, 'cap', 'issue', '--to', bDid, '--can', '/noir', '--ttl', 'soon'], PASS),
    noir(['--home', A, 'cap', 'issue', '--to', 'did:web:x', '--can', '/noir'], PASS),
    noir(['--home', A, 'cap', 'verify', 'not.a.token']),
    noir(['--home', A, 'cap', 'issue', '--to', bDid, '--can', 'noir'], PASS),
  ])
  t.equal(noTo.code, 2)
  t.match(noTo.stderr, /^noir: UsageError: --to DID is required\n$/)
  t.equal(badTtl.code, 2)
  t.equal(badTo.code, 2)
  t.equal(garbage.code, 1)
  t.match(garbage.stderr, /MalformedCapabilityError/)
  t.equal(badPath.code, 1)
  t.match(badPath.stderr, /MalformedCapabilityError/)
})
