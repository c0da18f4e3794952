// The customer CLI against a real daemon (noir deploy/ps/status/logs/bids/contracts/stop), and `noir demo`
// end to end as a separate process: it must finish, show the failover, and leave nothing behind.
import t from 'tap'
import { formatNlc } from '../../ledger/units.ts'
import { spawn, spawnSync } from 'node:child_process'
import { get } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DaemonCluster, NOIR_BIN, runningCopies } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { removeNodeContainers } from '../commands/demo.ts'
import { demoServiceModule } from '../../appliance/executor/wasm/demo-modules.ts'

const IMAGE = 'noir/busybox:latest'
const examples = new URL('../../examples/', import.meta.url).pathname

function noir(home: string, args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [NOIR_BIN, '--home', home, ...args], { encoding: 'utf8', timeout: 90_000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

t.test('the customer commands drive this node\'s orchestrator', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const cluster = new DaemonCluster()
  const tmp = mkdtempSync(join(tmpdir(), 'noir-cli-'))
  t.teardown(async () => {
    const dids = cluster.daemons.map((d) => d.did)
    await cluster.cleanup()
    await removeNodeContainers(dids)
    rmSync(tmp, { recursive: true, force: true })
  })
  const d = await cluster.start({ config: { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', metrics: { listen: '127.0.0.1:0' }, orchestration: { bidWindowMs: 500 } } as never })
  // the daemon's own count of status requests (GET /v1/deployments/:id), as its metrics say
  const scrape = (await d.api.get<{ services: { metrics: { scrape: string } } }>('/v1/status')).services.metrics.scrape
  const statusRequests = async (): Promise<number> => {
    // a fresh connection each time (a kept-alive one the scrape server has closed would fail the read)
    const text = await new Promise<string>((resolve, reject) => {
      get(scrape, { agent: false }, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body)).on('error', reject)
      }).on('error', reject)
    })
    return [...text.matchAll(/^noir_api_requests_total\{([^}]*)\} (\d+)/gm)]
      .filter((m) => /method="GET"/.test(m[1]!) && /route="\/v1\/deployments\/:id"/.test(m[1]!))
      .reduce((n, m) => n + Number(m[2]), 0)
  }

  const bad = join(tmp, 'bad.yaml')
  writeFileSync(bad, 'apiVersion: noir/v1\nkind: job\nname: x\nruntime: {type: container}\nresources: {cpu: 0, memory: 1Gi}\n')
  const invalid = noir(d.home, ['deploy', bad])
  t.equal(invalid.code, 1)
  t.match(invalid.err, /InvalidWorkloadError: \$\.runtime\.image: is required; \$\.resources\.cpu: must be >= 0.01/)
  // Numbers JSON cannot carry are a validation error naming the field, not an internal error later.
  for (const v of ['.nan', '.inf', '-.inf']) {
    writeFileSync(bad, `apiVersion: noir/v1\nkind: job\nname: x\nruntime: {type: container, image: ${IMAGE}}\nresources: {cpu: ${v}, memory: 64Mi}\n`)
    const r = noir(d.home, ['deploy', bad])
    t.equal(r.code, 1, `cpu ${v}`)
    t.match(r.err, /InvalidWorkloadError: \$\.resources\.cpu: must be number \(got -?(NaN|Infinity)\)/, `cpu ${v} is named`)
  }
  // Straight at the API: JSON cannot hold NaN, so the nearest an attacker gets is null or a huge number.
  for (const cpu of [null, 1e308, 1e-12, '1e-12']) {
    const err = await d.api.post('/v1/deployments', { workload: { apiVersion: 'noir/v1', kind: 'job', name: 'x', runtime: { type: 'container', image: IMAGE }, resources: { cpu, memory: '64Mi' } } }).then(() => undefined, (e: unknown) => e as Error)
    t.equal(err?.name, 'InvalidWorkloadError', `API cpu ${String(cpu)}`)
    t.match(err?.message, /resources\.cpu/, `API cpu ${String(cpu)} is named`)
  }

  const dry = noir(d.home, ['--json', 'bids', join(examples, 'job/job.yaml'), '--dry-run'])
  t.equal(dry.code, 0, dry.err)
  const dr = JSON.parse(dry.out) as { round: { bids: { node: string }[] }; placement: { ok: boolean; nodes: string[] } }
  t.same(dr.placement, { ok: true, nodes: [d.did], standby: null })

  const polled = await statusRequests()
  const dep = noir(d.home, ['--json', 'deploy', join(examples, 'job/job.yaml'), '--wait'])
  t.equal(dep.code, 0, dep.err)
  const v = JSON.parse(dep.out) as { id: string; phase: string; history: { phase: string; at: number }[]; createdAt: number }
  t.equal(v.phase, 'completed')
  t.same(v.history.map((h) => h.phase), ['preparing', 'bidding', 'committing', 'provisioning', 'running', 'completed'].filter((p) => v.history.some((h) => h.phase === p)))
  // a plain status, then the long poll, which waits at the daemon and is answered when the phase is reached:
  // two requests (and one more for each 25 s wait that runs out), where polling every 150 ms asked several
  // times a second
  const runMs = v.history.at(-1)!.at - v.createdAt
  const asked = (await statusRequests()) - polled
  t.ok(asked >= 1 && asked <= 2 + Math.ceil(runMs / 25_000), `--wait --json: ${asked} status request(s) over the ${runMs} ms the deployment took`)

  // in text, a job that takes seconds: one answer per new event (each printed once, as it happens), not dozens
  const slow = join(tmp, 'slow.yaml')
  writeFileSync(slow, `apiVersion: noir/v1\nkind: job\nname: slow-job\nruntime: {type: container, image: ${IMAGE}, command: [sh, -c, 'echo step 1; sleep 2; echo step 2']}\nresources: {cpu: 0.1, memory: 16Mi}\n`)
  const polledText = await statusRequests()
  const text = noir(d.home, ['deploy', slow, '--wait'])
  t.equal(text.code, 0, text.err)
  t.match(text.out, /deployment slow-job-\w+\n.*bid round 1: asked 1 node\(s\), 1 bid\(s\)/s, 'progress is printed while bidding')
  const textId = /deployment (slow-job-\w+)/.exec(text.out)![1]!
  const textView = JSON.parse(noir(d.home, ['--json', 'status', textId]).out) as { events: { msg: string }[]; history: { at: number }[]; createdAt: number }
  const lines = text.out.trim().split('\n').slice(1, -1).map((l) => l.replace(/^\S+\s+/, ''))
  // (events noted after the phase was reached are not waited for)
  t.same(lines, textView.events.slice(0, lines.length).map((e) => e.msg), `each event printed once, in order (${lines.length} of ${textView.events.length})`)
  const textMs = textView.history.at(-1)!.at - textView.createdAt
  const askedText = (await statusRequests()) - polledText - 1 // less the status just asked
  t.ok(askedText >= 1 && askedText <= 1 + textView.events.length + Math.ceil(textMs / 25_000), `--wait in text: ${askedText} status request(s) for ${textView.events.length} events over ${textMs} ms`)
  t.match(text.out, new RegExp(`${textId}: completed\\n$`), 'and the phase once reached')

  // Ctrl-C while the poll waits at the daemon: the request is aborted and the command ends at once, with the
  // deployment as last seen (its replica running); a poll left to run would have ended when the job completed (8 s, within
  // its 25 s wait), and printed that
  const ctrlC = join(tmp, 'ctrlc.yaml')
  writeFileSync(ctrlC, `apiVersion: noir/v1\nkind: job\nname: ctrlc-job\nruntime: {type: container, image: ${IMAGE}, command: [sh, -c, 'trap "exit 0" TERM; sleep 8 & wait']}\nresources: {cpu: 0.1, memory: 16Mi}\n`)
  const child = spawn(process.execPath, [NOIR_BIN, '--home', d.home, 'deploy', ctrlC, '--wait'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let seenOut = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    seenOut += c
    if (/running on /.test(seenOut) && child.exitCode === null && !child.killed) child.kill('SIGINT')
  })
  const [exitCode] = await new Promise<[number | null]>((res) => child.once('close', (c) => res([c])))
  const ctrlId = /deployment (ctrlc-job-\w+)/.exec(seenOut)?.[1]
  t.equal(exitCode, 0, 'Ctrl-C: exit 0')
  t.match(seenOut, new RegExp(`${ctrlId}: (provisioning|running)\\n$`), 'it ended with the deployment as last seen (its replica running), not completed')
  t.equal((JSON.parse(noir(d.home, ['--json', 'status', ctrlId!]).out) as { phase: string }).phase, 'running', 'the job was still running')
  noir(d.home, ['stop', ctrlId!])

  const ps = JSON.parse(noir(d.home, ['--json', 'ps']).out) as { deployments: { id: string }[] }
  t.ok(ps.deployments.some((x) => x.id === v.id))
  t.match(noir(d.home, ['status', v.id]).out, /phase: completed/)
  const logs = noir(d.home, ['logs', v.id])
  t.match(logs.out, /step 1\n.*step 5\n.*done/s, 'the job\'s log lines')

  const contracts = JSON.parse(noir(d.home, ['--json', 'contracts']).out) as { contracts: { side: string; signedByConsumer: boolean; signedByProvider: boolean; deploymentId: string }[] }
  const mine = contracts.contracts.filter((c) => c.deploymentId === v.id)
  t.same(mine.map((c) => c.side).sort(), ['consumer', 'provider'], 'kept by both sides (here one node is both)')
  t.ok(mine.every((c) => c.signedByConsumer && c.signedByProvider))
  // prices are whole µNLC in digits on the API, and NLC in the text the CLI prints
  const price = (contracts.contracts.find((c) => c.deploymentId === v.id) as unknown as { pricePerHour: unknown }).pricePerHour
  t.match(price, /^[1-9][0-9]*$/, `the price is whole µNLC (${String(price)})`)
  const shown = `${formatNlc(BigInt(price as string))}/h`
  t.ok(noir(d.home, ['contracts']).out.includes(shown), `noir contracts shows it as ${shown}`)

  const missing = noir(d.home, ['status', 'nope'])
  t.equal(missing.code, 1)
  t.match(missing.err, /DeploymentNotFoundError/)

  // A service survives a restart of the daemon that orchestrates and runs it: same replica, one container.
  const svcFile = join(tmp, 'svc.yaml')
  writeFileSync(svcFile, `apiVersion: noir/v1\nkind: service\nname: keeps\nruntime: {type: container, image: ${IMAGE}, command: [sh, -c, 'while true; do echo up; sleep 1; done']}\nresources: {cpu: 0.2, memory: 16Mi}\n`)
  const sv = JSON.parse(noir(d.home, ['--json', 'deploy', svcFile, '--wait']).out) as { id: string; phase: string; replicas: { slot: string; contractId: string }[] }
  t.equal(sv.phase, 'running')
  const slot = sv.replicas[0]!.slot
  const copies = () => runningCopies(slot)
  t.equal(copies(), 1)
  await d.stop()
  const d2 = await cluster.start({ home: d.home })
  const again = JSON.parse(noir(d2.home, ['--json', 'status', sv.id]).out) as { phase: string; replicas: { contractId: string }[]; events: { msg: string }[] }
  t.equal(again.phase, 'running', 'the deployment is still running after the restart')
  t.equal(again.replicas[0]!.contractId, sv.replicas[0]!.contractId, 'under the same contract')
  t.ok(again.events.some((e) => /taken up again/.test(e.msg)))
  // The appliance re-attaches the container, or starts it again if the shutdown ended it: one copy either way.
  for (let i = 0; i < 200 && copies() === 0; i++) await new Promise((r) => setTimeout(r, 100))
  t.equal(copies(), 1, 'one container for the slot, not started twice')
  const stopped = noir(d2.home, ['stop', sv.id])
  t.match(stopped.out, /stopped/)
  t.equal(copies(), 0, 'stopping removes it')
})

t.test('noir stop exits 1 and names the replica when its node cannot confirm the stop', async (t) => {
  const cluster = new DaemonCluster()
  const tmp = mkdtempSync(join(tmpdir(), 'noir-cli-'))
  t.teardown(async () => {
    await cluster.cleanup()
    rmSync(tmp, { recursive: true, force: true })
  })
  const share = 'cpu=1,memory=1GiB,disk=2GiB,gpu=0'
  const a = await cluster.start({ config: { share, orchestration: { bidWindowMs: 500 } } as never })
  const b = await cluster.start({ bootstrap: a.multiaddrs, config: { share, orchestration: { labels: { zone: 'b' } } } as never })
  const module = join(tmp, 'svc.wasm')
  writeFileSync(module, demoServiceModule())
  // b's owner makes the module available by name; a's workload names it.
  const added = noir(b.home, ['catalog', 'add', 'wasm', 'svc', module])
  t.equal(added.code, 0, added.err)
  const file = join(tmp, 'svc.yaml')
  writeFileSync(file, `apiVersion: noir/v1\nkind: service\nname: pinned\nruntime: {type: wasm, module: svc}\nresources: {cpu: 0.2, memory: 16Mi}\nconstraints: {labels: {zone: b}}\n`)
  let v: { id: string; phase: string; replicas: { node: string; slot: string }[] } | undefined
  for (let i = 0; i < 50 && v?.phase !== 'running'; i++) {
    // the mesh may still be forming: deploy again until node b bids
    const r = noir(a.home, ['--json', 'deploy', file, '--wait'])
    v = JSON.parse(r.out) as typeof v
    if (v?.phase !== 'running') await new Promise((res) => setTimeout(res, 200))
  }
  t.equal(v?.phase, 'running')
  t.equal(v!.replicas[0]!.node, b.did, 'placed on the only node with the label')
  await b.kill()
  const stopped = noir(a.home, ['stop', v!.id])
  t.equal(stopped.code, 1, 'not "stopped": the node could not confirm')
  t.match(stopped.out, /1 replica\(s\) not confirmed stopped/)
  t.match(stopped.err, new RegExp(`${v!.replicas[0]!.slot} on node ${b.did} \\(contract [\\w-]+\\) did not stop: \\w+`))
  t.notMatch(stopped.out, /: stopped$/m)
})

t.test('noir demo runs end to end and leaves no process, container or temp home behind', async (t) => {
  const child = spawn(process.execPath, [NOIR_BIN, 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')))
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')))
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)))
  t.equal(code, 0, 'noir demo exits 0')
  if (code !== 0) t.comment(out.slice(-3000))
  t.match(out, /job completed/)
  t.match(out, /replica \d is running again on node \w+: \d+ ms after the kill/)
  t.match(out, /consumer \w+: [\d.]+ NLC before, [\d.]+ NLC after \(paid [1-9]\d* µNLC\)/, 'the demo shows the consumer paying')
  t.match(out, /receipt #0 of \w+ on \w+: \d+ ms, \d+ µNLC, (accepted|disputed), signed by both/, 'and the receipts')
  t.match(out, /earned [1-9]\d* NLR units/, 'and a worker earning')
  const line = /running again on node \w+: (\d+) ms after the kill/.exec(out)
  if (line) t.comment(`demo failover: ${line[1]} ms from kill -9 to running`)
  const pids = [...out.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]))
  t.equal(pids.length >= 3, true)
  for (const pid of pids) {
    let alive = true
    try {
      process.kill(pid, 0)
    } catch {
      alive = false
    }
    t.notOk(alive, `daemon ${pid} is gone`)
  }
  const dids = [...out.matchAll(/(did:key:z6Mk\w+)/g)].map((m) => m[1]!)
  t.equal(await removeNodeContainers([...new Set(dids)]), 0, 'no container left')
})
