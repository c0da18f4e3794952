// The node's watchdog process (spec/appliance.md "Watchdog"): started detached by the daemon, it outlives it.
// While the daemon renews its lease it only waits; once the daemon stops renewing (killed with SIGKILL, hung
// or stopped) it stops, by Docker label, each contract replica of this node whose grace has passed, so a
// replica never runs on here for long after its consumer placed it elsewhere; then it exits. Replicas run
// under runsc directly (appliance/executor/docker/runsc.ts) are found by their bundles (HOME/runsc/bundles,
// a `grace` file each) and killed with runsc.
// Imports nothing but Node's own modules, lease.ts and clock-offset.ts: it starts in tens of milliseconds and holds little.
// Usage: node watchdog-main.ts HOME NODE_DID DAEMON_PID
import { execFile } from 'node:child_process'
import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { decide, LABEL_GRACE, parseLease, type Replica } from './lease.ts'
import { applyClockOffset } from '../daemon/clock-offset.ts'

// the daemon's clock offset (tests only): the lease times it writes are read on the same skewed clock
applyClockOffset(process.env)

const [home, did, pidText] = process.argv.slice(2)
if (!home || !did || !pidText) {
  console.error('usage: watchdog-main.ts HOME NODE_DID DAEMON_PID')
  process.exit(2)
}
const watchedPid = Number(pidText)
const dir = join(home, 'watchdog')
const POLL_MS = 200

const log = (msg: string, fields: Record<string, unknown> = {}): void => {
  try {
    appendFileSync(join(dir, 'watchdog.log'), `${JSON.stringify({ ts: new Date().toISOString(), msg, ...fields })}\n`)
  } catch {
    // the home was removed: nothing to write to
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function docker(args: string[]): Promise<string> {
  return new Promise((resolve) => execFile('docker', args, { timeout: 15_000 }, (err, stdout) => resolve(err ? '' : stdout)))
}

const runscDir = join(home, 'runsc')
const RUNSC_PREFIX = 'runsc-'

function runsc(args: string[]): Promise<string> {
  return new Promise((resolve) => execFile('runsc', [`--root=${join(runscDir, 'state')}`, ...args], { timeout: 15_000 }, (err, stdout) => resolve(err ? '' : stdout)))
}

/** This node's running runsc sandboxes that are contract replicas (a bundle with a grace file). */
async function sandboxes(): Promise<Replica[]> {
  const bundles = join(runscDir, 'bundles')
  if (!existsSync(bundles)) return []
  const out: Replica[] = []
  for (const id of readdirSync(bundles)) {
    if (!id.startsWith(RUNSC_PREFIX) || !existsSync(join(bundles, id, 'grace'))) continue
    const state = await runsc(['state', id])
    if (!/"status":\s*"running"/.test(state)) continue
    out.push({ id, graceMs: Number(readFileSync(join(bundles, id, 'grace'), 'utf8')) || 1000 })
  }
  return out
}

/** This node's running contract replicas (containers labelled with its DID and a grace, runsc sandboxes). */
async function replicas(): Promise<Replica[]> {
  const out = await docker(['ps', '--filter', `label=noir.node=${did}`, '--filter', `label=${LABEL_GRACE}`, '--format', `{{.ID}} {{.Label "${LABEL_GRACE}"}}`])
  const containers = out.split('\n').filter((l) => l.trim()).map((l) => {
    const [id, grace] = l.trim().split(' ')
    return { id: id!, graceMs: Number(grace) || 1000 }
  })
  return [...containers, ...(await sandboxes())]
}

let known: Replica[] = []
let listedAt = 0
async function tick(): Promise<void> {
  const now = Date.now()
  const leaseFile = join(dir, 'lease.json')
  const lease = existsSync(leaseFile) ? parseLease(readFileSync(leaseFile, 'utf8')) : undefined
  const daemonAlive = alive(watchedPid)
  // Docker is asked once a second while the daemon is silent (cheap while it renews: not asked at all).
  const silent = !daemonAlive || !lease || now - lease.at >= 500
  if (silent && now - listedAt >= 1000) {
    known = await replicas()
    listedAt = now
  }
  const v = decide(now, { lease, daemonAlive, watchedPid }, silent ? known : [])
  if (v.action === 'exit') {
    log('watchdog exits', { why: v.why })
    process.exit(0)
  }
  if (v.action === 'stop') {
    for (const id of v.replicas) {
      await (id.startsWith(RUNSC_PREFIX) ? runsc(['kill', id, 'KILL']) : docker(['kill', id]))
      log('stopped a replica its daemon stopped renewing', { container: id, silentMs: v.silentMs, daemonAlive })
    }
    known = known.filter((r) => !v.replicas.includes(r.id))
  }
}

log('watchdog started', { pid: process.pid, daemon: watchedPid })
process.on('SIGTERM', () => process.exit(0))
const loop = async (): Promise<void> => {
  for (;;) {
    await tick().catch((err: Error) => log('tick failed', { error: err.message }))
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}
void loop()
