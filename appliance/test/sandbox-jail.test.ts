// The symlink chain of the security report, step by step, each step proven to fail on its own:
//   1. a workload names a path on the provider's disk        -> refused at validation (actors/test/workload.test.ts,
//                                                               market-attacks.test.ts, catalog.test.ts)
//   2. it learns or guesses another allocation's state dir   -> 128 random bits under 0711/0700 folders (below)
//   3. a link planted in a state dir leads out of it         -> the jail binds nothing it could point at (below)
//   4. the sandbox reads the keystore or /proc/PID/environ   -> unprivileged user, own PID namespace, only its
//                                                               binds (below; Node's permission model is a
//                                                               further wall, actor-executor-node.test.ts)
//   5. the passphrase sits in the daemon's environment        -> it comes on a descriptor (below)
// The jail is driven with a shell instead of Node here, so no permission model helps it: what holds is the jail.
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, lchownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bwrap, root, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { jailArgs, SANDBOX_GID, SANDBOX_UID } from '../executor/actor/sandbox-jail.ts'
import { LocalMesh } from '../../cli/local-mesh.ts'

function stateDir(t: Test): { home: string; state: string } {
  const home = mkdtempSync(join(tmpdir(), 'noir-jail-home-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  chmodSync(home, 0o700)
  const state = join(home, 'allocations', 'a1', 'state-x')
  mkdirSync(state, { recursive: true, mode: 0o700 })
  lchownSync(state, SANDBOX_UID, SANDBOX_GID)
  return { home, state }
}

/** Runs a shell script in the jail; returns its output. */
function inJail(state: string, script: string, readOnly: string[] = []): { out: string; code: number | null } {
  const r = spawnSync('bwrap', jailArgs({ readOnly, stateDir: state, network: false }, ['/bin/sh', '-c', script]), { encoding: 'utf8', timeout: 20_000 })
  return { out: `${r.stdout}${r.stderr}`, code: r.status }
}

t.test('in the jail a workload is an unprivileged user that sees only its own processes, no host file it was not given, and no network', async (t) => {
  if (!requireOrSkip(t, bwrap, root)) return
  const { home, state } = stateDir(t)
  writeFileSync(join(home, 'keystore.json'), '{"secret":"the provider key"}', { mode: 0o600 })
  // A daemon started the way an operator might, with the passphrase in its environment.
  const daemon = spawn('sleep', ['60'], { env: { ...process.env, NOIR_PASSPHRASE: 'operator-secret-passphrase' }, stdio: 'ignore' })
  t.teardown(() => daemon.kill('SIGKILL'))

  const id = inJail(state, 'id -u; id -g')
  t.equal(id.out.trim(), `${SANDBOX_UID}\n${SANDBOX_GID}`, 'it runs as nobody/nogroup')

  const keystore = inJail(state, `cat ${join(home, 'keystore.json')} && echo READ`)
  t.notMatch(keystore.out, /the provider key|READ/, 'the node home does not exist in the jail')

  const environ = inJail(state, `cat /proc/${daemon.pid}/environ && echo READ; tr '\\0' '\\n' < /proc/1/environ | grep -c NOIR_PASSPHRASE`)
  t.notMatch(environ.out, /operator-secret-passphrase|READ/, 'the daemon\'s /proc entry is not visible')

  const procs = inJail(state, "ls /proc | grep -c '^[0-9]'")
  t.ok(Number(procs.out.trim()) <= 4, `only the jail's own processes are in its /proc (${procs.out.trim()})`)
  const host = readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p)).length
  t.ok(host > 10, `(the host has ${host})`)

  const write = inJail(state, `echo x > ${join(state, 'mine')} && echo STATE-OK; echo x > /usr/planted 2>/dev/null && echo USR-WRITTEN; echo x > ${join(home, 'planted')} 2>/dev/null && echo HOME-WRITTEN`)
  t.match(write.out, /STATE-OK/, 'it writes its own state directory')
  t.notMatch(write.out, /USR-WRITTEN|HOME-WRITTEN/, 'and nothing else')
  t.equal(readFileSync(join(state, 'mine'), 'utf8'), 'x\n')

  const net = inJail(state, 'cat /proc/net/dev | grep -c ":"')
  t.equal(net.out.trim(), '1', 'network none: only a loopback interface')
})

t.test('a link planted in a state directory leads nowhere: its target is not in the jail, or not readable', async (t) => {
  if (!requireOrSkip(t, bwrap, root)) return
  const { home, state } = stateDir(t)
  writeFileSync(join(home, 'keystore.json'), 'the provider key', { mode: 0o600 })
  // As a container (root in its own namespace) could: links to the keystore, to /etc/shadow, to /proc/1/environ.
  symlinkSync(join(home, 'keystore.json'), join(state, 'to-keystore'))
  symlinkSync('/etc/shadow', join(state, 'to-shadow'))
  symlinkSync('/proc/1/environ', join(state, 'to-environ'))
  const r = inJail(state, `for f in to-keystore to-shadow to-environ; do cat ${state}/$f 2>/dev/null && echo "READ $f"; done; echo done`)
  t.match(r.out, /done/)
  t.notMatch(r.out, /READ|the provider key|root:/, `no link was followed out (${r.out.trim()})`)
})

t.test('state directories are private: 128 random bits under folders no other allocation can list', async (t) => {
  if (!requireOrSkip(t, root)) return
  const { privateStateDir } = await import('../allocation/allocation-manager.ts')
  const base = mkdtempSync(join(tmpdir(), 'noir-stateroot-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const a = privateStateDir(join(base, 'allocations'), 'same-id')
  const b = privateStateDir(join(base, 'allocations'), 'same-id')
  t.not(a, b, 'two state directories of one allocation id differ')
  t.match(a, /state-[0-9a-f]{32}$/, 'the name carries 128 random bits')
  t.equal(statSync(join(base, 'allocations')).mode & 0o777, 0o711, 'the root can be traversed but not listed')
  t.equal(statSync(join(a, '..')).mode & 0o777, 0o711, 'so can the allocation\'s folder')
  t.equal(statSync(a).mode & 0o777, 0o700, 'the state directory is its owner\'s alone')
  const listing = spawnSync('setpriv', [`--reuid=${SANDBOX_UID}`, `--regid=${SANDBOX_GID}`, '--clear-groups', 'ls', join(base, 'allocations', 'same-id')], { encoding: 'utf8' })
  t.not(listing.status, 0, 'another user cannot list the allocation folder to find the name')
})

t.test('a daemon started by the project\'s own tools has no passphrase in its environment', async (t) => {
  const passphrase = 'a-passphrase-to-look-for-7f3a'
  const mesh = new LocalMesh({ homePrefix: 'noir-environ-', passphrase })
  t.teardown(() => mesh.cleanup())
  const node = await mesh.start({})
  const environ = readFileSync(`/proc/${node.pid}/environ`, 'utf8')
  t.notMatch(environ, /NOIR_PASSPHRASE=/, 'no NOIR_PASSPHRASE variable')
  t.match(environ, /NOIR_PASSPHRASE_FD=3/, 'the passphrase came on descriptor 3')
  t.notOk(environ.includes(passphrase), 'and the passphrase itself appears nowhere in it')
})
