// `noir owner certify` and `noir core certify`, run as real processes: the printed config.json section holds a
// certificate that verifies for the home's DID and the node named; bad input exits 2 with the reason.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Keystore } from '../../identity/index.ts'
import { NodeKey } from '../../identity/keys.ts'
import { CORE_ABILITY, OWNER_ABILITY, verifyNodeCertificate } from '../../actors/placement/node-certificate.ts'

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

const PASS = { NOIR_PASSPHRASE: 'certify test' }
const dir = mkdtempSync(join(tmpdir(), 'noir-cli-certify-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const home = join(dir, 'owner')
const node = NodeKey.generate().did

t.test('owner certify and core certify print a section whose certificate verifies', async (t) => {
  const made = await noir(['--home', home, 'id', 'new'], PASS)
  t.equal(made.code, 0, made.stderr)
  const owner = Keystore.publicDid(home)
  for (const [section, ability] of [['owner', OWNER_ABILITY], ['core', CORE_ABILITY]] as const) {
    const r = await noir(['--home', home, section, 'certify', node, '--ttl', '7d'], PASS)
    t.equal(r.code, 0, r.stderr)
    const cert = (JSON.parse(r.stdout) as Record<string, { certificate: unknown }>)[section]!.certificate
    const body = verifyNodeCertificate(cert, { ability, node, issuers: [owner] })
    t.equal(body.expiresAt - body.issuedAt, 7 * 86_400_000, '--ttl 7d')
  }
})

t.test('bad input exits 2 with the reason', async (t) => {
  const notDid = await noir(['--home', home, 'owner', 'certify', 'did:web:example.com'], PASS)
  t.equal(notDid.code, 2)
  t.match(notDid.stderr, /did:key/)
  const badTtl = await noir(['--home', home, 'owner', 'certify', node, '--ttl', 'forever'], PASS)
  t.equal(badTtl.code, 2)
  t.match(badTtl.stderr, /duration/)
  const none = await noir(['--home', home, 'core', 'certify'], PASS)
  t.equal(none.code, 2)
  const revokeNotDid = await noir(['--home', home, 'owner', 'revoke', '../../etc/passwd'], PASS)
  t.equal(revokeNotDid.code, 2, 'revoke: a path for NODE_DID is a usage error')
  t.match(revokeNotDid.stderr, /did:key/)
  const longReason = await noir(['--home', home, 'owner', 'revoke', node, '--reason', 'x'.repeat(201)], PASS)
  t.equal(longReason.code, 2, 'revoke: a reason over 200 characters')
  t.match(longReason.stderr, /at most 200/)
  const unknownFlag = await noir(['--home', home, 'core', 'revoke', node, '--force'], PASS)
  t.equal(unknownFlag.code, 2, 'revoke: an unknown flag')
})
