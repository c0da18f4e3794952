// `noir actor send` (a tell, no --ask) against a real daemon: the API waits for the hand-off, so a node that
// cannot be reached is an UnreachableError and a non-zero exit, not { sent: true }.
import t from 'tap'
import { spawn } from 'node:child_process'
import { NodeKey } from '../../../identity/keys.ts'
import { DaemonCluster, NOIR_BIN, TEST_PASSPHRASE } from '../../../scripts/testing/daemons.ts'

const cluster = new DaemonCluster()
t.teardown(() => cluster.cleanup())

function noir(home: string, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [NOIR_BIN, '--home', home, ...args], { env: { ...process.env, NOIR_PASSPHRASE: TEST_PASSPHRASE }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (c: Buffer) => (out += c.toString()))
    p.stderr.on('data', (c: Buffer) => (err += c.toString()))
    p.once('exit', (code) => resolve({ code, out, err }))
  })
}

t.test('noir actor send to an unreachable node exits non-zero with UnreachableError; to a live actor it prints sent', async (t) => {
  const d = await cluster.start()
  const told = await noir(d.home, 'actor', 'send', `${d.did}/node`, '/noir/node/ping', '{}', '--json')
  t.equal(told.code, 0, told.err)
  t.same(JSON.parse(told.out), { sent: true }, 'a tell handed off prints { sent: true }')

  const nowhere = NodeKey.generate().did
  const lost = await noir(d.home, 'actor', 'send', `${nowhere}/node`, '/noir/node/ping', '{}')
  t.not(lost.code, 0, 'the CLI exits non-zero')
  t.match(lost.err, /^noir: UnreachableError: /, 'and names the typed error')
  t.notMatch(lost.out, /sent/, 'it does not claim the message was sent')
})
