// The package as another project uses it (spec/packaging.md): `npm pack` (which builds dist/), install the
// tarball into a fresh temporary project, run its `noir --help`, type-check a file of that project against
// the package's `noirledger/sdk` and `noirledger/client` declarations, write an SDK actor there that imports
// `noirledger/sdk`, deploy it with the installed `noir` to a daemon the installed package runs, and ask it;
// then drive the installed `noir gateway start` with `noirledger/client` from a script of that project.
// Nothing here runs the repository's TypeScript sources in the daemon or the gateway: Node refuses to
// strip types under node_modules, so every module they load is the built JavaScript.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { eventually, TEST_PASSPHRASE } from '../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { linkToken, smtpOnLoopback } from '../../gateway/test/mail-rig.ts'
import type { LocalMesh, LocalMeshOptions } from '../local-mesh.ts'

const repo = fileURLToPath(new URL('../../', import.meta.url))
const tsc = join(repo, 'node_modules/typescript/bin/tsc')
const IMAGE = 'noir/busybox:latest'

interface Run { code: number; stdout: string; stderr: string }
function run(cmd: string, args: string[], o: { cwd?: string; env?: Record<string, string>; timeout?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: o.cwd, env: { ...process.env, ...o.env }, timeout: o.timeout ?? 300_000, maxBuffer: 32 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const { port } = s.address() as AddressInfo
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

const COUNTER = `// An SDK actor written in a project that installed noirledger: the SDK comes from the package.
import { assign, setup } from 'xstate'
import { defineActor } from 'noirledger/sdk'

const machine = setup({
  types: { context: {} as { count: number }, events: {} as { type: 'increment'; by: number } },
}).createMachine({
  id: 'tally',
  context: { count: 0 },
  on: { increment: { actions: assign({ count: ({ context, event }) => context.count + event.by }) } },
})

export const tally = defineActor(machine).with({
  name: 'outside/tally',
  behaviors: {
    '/tally/add': { public: true, event: (body: { by: number }) => ({ type: 'increment', by: body.by }), reply: (s) => s.context.count },
    '/tally/get': { public: true, reply: (s) => s.context.count },
  },
})
export default tally
`

const CLIENT_USE = `// Type-checked against the installed declarations only.
import { NoirClient, NoirApiError } from 'noirledger/client'
import type { ActorDefinition } from 'noirledger/sdk'
import { tally } from './tally.ts'

const c: NoirClient = new NoirClient({ url: 'https://127.0.0.1:1' })
const e: typeof NoirApiError = NoirApiError
const d: ActorDefinition = tally
export { c, e, d }
`

// the customer's side, run as a script of the project: `node drive.mjs URL CA_FILE STEP ...`
const DRIVE = `import { readFileSync } from 'node:fs'
import { NoirClient } from 'noirledger/client'
const [url, caFile, step, email, password, token] = process.argv.slice(2)
const c = new NoirClient({ url, ca: readFileSync(caFile, 'utf8') })
if (step === 'signup') {
  await c.signUp(email, password)
} else {
  await c.verifyEmail(token)
  const account = await c.login(email, password)
  const key = await c.createApiKey('packaged', ['deploy', 'logs'], 1)
  const sdk = new NoirClient({ url, ca: readFileSync(caFile, 'utf8'), apiKey: key.token })
  const job = await sdk.deploy({ apiVersion: 'noir/v1', kind: 'job', name: 'from-package', runtime: { type: 'container', image: '${IMAGE}', command: ['sh', '-c', 'echo packaged 42'] }, resources: { cpu: 0.2, memory: '32Mi' } })
  let v = job
  for (let i = 0; i < 600 && v.phase !== 'completed' && v.phase !== 'failed'; i++) {
    await new Promise((r) => setTimeout(r, 200))
    v = await sdk.status(job.id)
  }
  const lines = []
  if (v.phase === 'completed') for await (const l of sdk.logs(job.id)) lines.push(l.line)
  process.stdout.write(JSON.stringify({ email: account.email, phase: v.phase, listed: (await sdk.workloads()).map((w) => w.id), id: job.id, lines }) + '\\n')
}
`

t.test('the packed tarball, installed into another project', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'noir-packaged-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))

  const packed = await run('npm', ['pack', '--pack-destination', work], { cwd: repo })
  t.equal(packed.code, 0, packed.code === 0 ? 'npm pack builds and packs' : `npm pack builds and packs: ${packed.stderr.slice(-400)}`)
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'))
  t.ok(tarball, 'a tarball')
  if (!tarball) return
  const listing = await run('tar', ['-tzf', join(work, tarball)])
  const files = listing.stdout.split('\n')
  t.ok(files.includes('package/dist/client/index.js') && files.includes('package/dist/client/index.d.ts'), 'the client SDK is built to JavaScript with declarations')
  t.ok(files.includes('package/dist/core/index.js') && files.includes('package/dist/spec/workload.schema.json'), 'the actor SDK and the files the built code reads are in it')
  for (const started of ['identity/signature-worker-thread.js', 'appliance/executor/wasm/wasm-worker.js', 'appliance/executor/actor/sandbox-host.js', 'appliance/executor/actor/sandbox-hooks.js', 'appliance/watchdog/watchdog-main.js']) {
    t.ok(files.includes(`package/dist/${started}`), `${started}, which the runtime starts by its file, is built`)
  }
  t.notOk(files.some((f) => /\/test\/|\.test\.|^package\/(bench|chaos|fuzz|scripts)\//.test(f)), 'no tests, benchmarks or scripts are packed')
  t.notOk(files.some((f) => f.startsWith('package/') && f.endsWith('.ts') && !f.endsWith('.d.ts')), 'no TypeScript source is packed (Node would refuse to run it there)')

  const proj = join(work, 'project')
  mkdirSync(proj)
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'outside', private: true, type: 'module' }))
  const installed = await run('npm', ['install', join(work, tarball), 'xstate', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: proj, timeout: 600_000 })
  t.equal(installed.code, 0, installed.code === 0 ? 'npm install of the tarball' : `npm install of the tarball: ${installed.stderr.slice(-400)}`)
  const bin = join(proj, 'node_modules/.bin/noir')

  const help = await run(bin, ['--help'], { cwd: proj })
  t.equal(help.code, 0, help.code === 0 ? 'the installed noir runs' : `the installed noir runs: ${help.stderr.slice(0, 300)}`)
  t.match(help.stdout, /Usage: noir \[--home DIR\]/, 'and prints its usage')

  writeFileSync(join(proj, 'tally.ts'), COUNTER)
  writeFileSync(join(proj, 'use.ts'), CLIENT_USE)
  writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'es2023', lib: ['es2024'], module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, allowImportingTsExtensions: true, skipLibCheck: true, types: [] },
    files: ['use.ts', 'tally.ts'],
  }))
  const typed = await run(process.execPath, [tsc, '-p', proj], { cwd: proj })
  t.equal(typed.code, 0, typed.code === 0 ? 'the project type-checks against noirledger/sdk and noirledger/client' : `the project type-checks against noirledger/sdk and noirledger/client: ${typed.stdout.slice(0, 800)}`)
  writeFileSync(join(proj, 'bad.ts'), "import { NoirClient } from 'noirledger/client'\nexport const n: number = new NoirClient({ url: 'x' })\n")
  writeFileSync(join(proj, 'tsconfig.bad.json'), JSON.stringify({ extends: './tsconfig.json', files: ['bad.ts'] }))
  const bad = await run(process.execPath, [tsc, '-p', join(proj, 'tsconfig.bad.json')], { cwd: proj })
  t.not(bad.code, 0, 'and a type error against the declarations is caught (the declarations are really read)')

  // a daemon the installed package runs: its own LocalMesh, which starts the installed `noir node start`
  const meshModule = pathToFileURL(join(proj, 'node_modules/noirledger/dist/cli/local-mesh.js')).href
  const { LocalMesh: InstalledMesh } = (await import(meshModule)) as { LocalMesh: new (o: LocalMeshOptions) => LocalMesh }
  const mesh = new InstalledMesh({ passphrase: TEST_PASSPHRASE, homePrefix: 'noir-packaged-' })
  t.teardown(() => mesh.cleanup())
  const node = await mesh.start({ readyTimeoutMs: 180_000, config: { share: 'cpu=2,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: 200, bidWindowMs: 500 } } as never })
  t.match(readFileSync(`/proc/${node.pid}/cmdline`, 'utf8'), /node_modules\/noirledger\/cli\/bin\/noir\.js/, 'the daemon runs the installed package')
  await node.api.post('/v1/wallet/topup', { amount: '1000000000', ref: `packaged-${node.did}` })

  writeFileSync(join(proj, 'tally.yaml'), ['apiVersion: noir/v1', 'kind: service', 'name: tally', `runtime: { type: actor, bundle: ${JSON.stringify(join(proj, 'tally.ts'))} }`, 'resources: { cpu: 0.3, memory: 192Mi }', ''].join('\n'))
  const deployed = await run(bin, ['--home', node.home, '--json', 'deploy', join(proj, 'tally.yaml')], { cwd: proj, env: { NOIR_PASSPHRASE: TEST_PASSPHRASE } })
  t.equal(deployed.code, 0, deployed.code === 0 ? "the installed noir deploys the project's actor" : `the installed noir deploys the project's actor: ${deployed.stderr.slice(-600)}`)
  const view = JSON.parse(deployed.stdout) as { id: string; phase: string; replicas: { contractId: string; node: string }[] }
  t.equal(view.replicas[0]?.node, node.did, 'placed on the daemon')
  const addr = `${node.did}/alloc/c-${view.replicas[0]!.contractId}/workload`
  const ask = async (behavior: string, body: unknown): Promise<unknown> => (await node.api.post<{ reply: unknown }>('/v1/actor/send', { to: addr, behavior, body, ask: true, timeoutMs: 10_000 })).reply
  const first = await eventually(async () => ({ count: await ask('/tally/get', null) }), 60_000, 500)
  t.equal(first.count, 0, 'the actor answers: its SDK import resolved to the runtime of the installed package')
  t.equal(await ask('/tally/add', { by: 5 }), 5, 'it counts')
  t.equal(await ask('/tally/add', { by: 2 }), 7, 'and keeps its state')

  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  // the gateway of the installed package, driven by a script of the project through noirledger/client
  const mail = await smtpOnLoopback(t)
  const port = await freePort()
  const gwHome = join(work, 'gateway-home')
  mkdirSync(gwHome)
  const gw = spawn(bin, ['--home', gwHome, 'gateway', 'start', '--smtp', `127.0.0.1:${mail.port}`, '--from', 'noreply@noir.test', '--public-url', 'https://gw.noir.test/', '--node', node.home, '--listen', `127.0.0.1:${port}`], { cwd: proj, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NOIR_PASSPHRASE: TEST_PASSPHRASE } })
  let gwOut = ''
  gw.stdout.on('data', (c: Buffer) => (gwOut += c.toString('utf8')))
  gw.stderr.on('data', (c: Buffer) => (gwOut += c.toString('utf8')))
  t.teardown(() => {
    gw.kill('SIGTERM')
  })
  const caFile = join(gwHome, 'gateway', 'tls.crt')
  await eventually(() => /gateway listening on/.test(gwOut) && readFileSync(caFile, 'utf8').includes('BEGIN CERTIFICATE'), 120_000, 200).catch((err: unknown) => {
    throw new Error(`the gateway did not start: ${gwOut} (${String(err)})`)
  })
  writeFileSync(join(proj, 'drive.mjs'), DRIVE)
  const url = `https://127.0.0.1:${port}`
  const email = 'outside@example.org'
  const password = 'correct horse battery staple'
  const signup = await run(process.execPath, ['drive.mjs', url, caFile, 'signup', email, password], { cwd: proj })
  t.equal(signup.code, 0, signup.code === 0 ? "the project's script signs up through noirledger/client" : `the project's script signs up through noirledger/client: ${signup.stderr.slice(-400)}`)
  const token = linkToken(await mail.lastMailTo(email), 'verify')
  const journey = await run(process.execPath, ['drive.mjs', url, caFile, 'journey', email, password, token], { cwd: proj })
  t.equal(journey.code, 0, journey.code === 0 ? 'and verifies, logs in, makes a key and deploys a job with it' : `and verifies, logs in, makes a key and deploys a job with it: ${journey.stderr.slice(-600)}`)
  const out = JSON.parse(journey.stdout.trim()) as { email: string; phase: string; listed: string[]; id: string; lines: string[] }
  t.equal(out.email, email)
  t.equal(out.phase, 'completed', 'the job ran through the gateway of the installed package')
  t.same(out.listed, [out.id], 'the account lists its one workload')
  t.ok(out.lines.includes('packaged 42'), "and the job's log came back through the SDK")
  // the dashboard of the installed package: its browser modules built beside the code (spec/dashboard.md)
  const get = (path: string) => new Promise<{ status: number; csp: string; body: string }>((resolve, reject) => {
    const req = httpsRequest(`${url}${path}`, { ca: readFileSync(caFile, 'utf8') }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString('utf8')))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, csp: String(res.headers['content-security-policy']), body }))
    })
    req.on('error', reject)
    req.end()
  })
  const shell = await get('/')
  t.equal(shell.status, 200, 'the installed gateway serves the dashboard')
  t.match(shell.csp, /script-src 'self'/)
  t.match((await get('/assets/app/main.js')).body, /from '\/assets\/app\/nav\.js'/, 'its modules, built and linked to their served URLs')
})
