// Workload artifacts between real daemons (separate `noir node start` processes on 127.0.0.1, real libp2p,
// real Docker; spec/artifacts.md): a WASI module, an SDK actor bundle and a container image that exist only
// on the consumer's node run on a provider that never had them; a tampered artifact is refused; a job's
// output comes back with its digest checked; the provenance records verify with a stock Ed25519 check from
// the DIDs alone; a third node finds an artifact's holders through the DHT.
import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { createPublicKey, randomBytes, verify } from 'node:crypto'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { base58btc } from 'multiformats/bases/base58'
import { DaemonCluster, NOIR_BIN, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { removeNodeContainers } from '../../cli/commands/demo.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'
import { wasmFixture } from './wasm-fixtures.ts'
import { canonicalJsonBytes } from '../../identity/canonical-json.ts'
import { digestOf } from '../../artifacts/digest.ts'

const BASE_IMAGE = 'noir/busybox:latest'
const share = 'cpu=2,memory=1GiB,disk=2GiB,gpu=0'
const work = mkdtempSync(join(tmpdir(), 'noir-artifacts-test-'))
const counter = fileURLToPath(new URL('../../examples/counter/counter.ts', import.meta.url))

function noir(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { timeout: 240_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

const held = async (d: DaemonHandle): Promise<string[]> => (await d.api.get<{ digest: string }[]>('/v1/artifacts')).map((a) => a.digest)

/** A stock Ed25519 check (node:crypto) of a did:key signature: the key comes from the DID string alone. */
function stockVerify(did: string, tag: string, value: unknown, sigB64u: string): boolean {
  const multicodec = base58btc.decode(did.slice('did:key:'.length))
  if (multicodec[0] !== 0xed || multicodec[1] !== 0x01) throw new Error('not an ed25519 did:key')
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), multicodec.subarray(2)])
  const message = Buffer.concat([Buffer.from(tag, 'utf8'), Buffer.from([0]), canonicalJsonBytes(value)])
  return verify(null, message, createPublicKey({ key: spki, format: 'der', type: 'spki' }), Buffer.from(sigB64u, 'base64url'))
}

t.test('artifacts, outputs and provenance between real daemons', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(BASE_IMAGE))) return
  const cluster = new DaemonCluster()
  const images: string[] = []
  t.teardown(async () => {
    const dids = cluster.daemons.map((d) => d.did)
    await cluster.cleanup()
    await removeNodeContainers(dids)
    for (const i of images) spawnSync('docker', ['rmi', '-f', i])
    rmSync(work, { recursive: true, force: true })
  })
  const cfg = (role: string) => ({ config: { share, orchestration: { beatMs: 200, bidWindowMs: 1000, labels: { role } } } as never })
  const a = await cluster.start(cfg('consumer'))
  const b = await cluster.start({ ...cfg('worker'), bootstrap: a.multiaddrs })
  const c = await cluster.start({ ...cfg('bystander'), bootstrap: a.multiaddrs })
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 2, 60_000)
  await eventually(async () => (await c.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 1, 60_000)
  await new Promise((r) => setTimeout(r, 1500))

  const deploy = async (file: string, ...flags: string[]): Promise<DeploymentView> => {
    const r = await noir(a.home, 'deploy', file, '--wait', '--json', ...flags)
    t.equal(r.code === 0 || r.code === 1, true, `noir deploy answered (${r.code}): ${r.stderr.slice(0, 400)}`)
    return JSON.parse(r.stdout) as DeploymentView
  }

  await t.test('a WASI module only the consumer has runs on the worker; its output and provenance come back verified', async (t) => {
    writeFileSync(join(work, 'writer.wasm'), wasmFixture('state-write'))
    writeFileSync(join(work, 'wasm-job.yaml'), [
      'apiVersion: noir/v1', 'kind: job', 'name: wasm-writer',
      'runtime: { type: wasm, module: ./writer.wasm }',
      'resources: { cpu: 0.2, memory: 64Mi }', 'constraints: { labels: { role: worker } }', 'job: { retries: 0 }', '',
    ].join('\n'))
    const moduleDigest = digestOf(readFileSync(join(work, 'writer.wasm')))
    t.notOk((await held(b)).includes(moduleDigest), 'the worker does not hold the module before')
    const v = await deploy(join(work, 'wasm-job.yaml'))
    t.equal(v.phase, 'completed', `the job completed on the worker (${v.reason ?? ''})`)
    t.equal(v.replicas[0]?.node, b.did, 'it ran on the worker')
    t.ok((await held(b)).includes(moduleDigest), 'the worker fetched the module by digest')

    const out = join(work, 'wasm-out')
    const res = await noir(a.home, 'results', v.id, '-o', out, '--json')
    t.equal(res.code, 0, `noir results: ${res.stderr.slice(0, 300)}`)
    const got = JSON.parse(res.stdout) as { digest: string; dir: string }[]
    t.equal(readFileSync(join(out, 'out.txt'), 'utf8'), 'persisted\n', "the job's output file came back")

    const p = await noir(a.home, 'provenance', v.id, '--json')
    t.equal(p.code, 0, p.stderr.slice(0, 300))
    const { record } = (JSON.parse(p.stdout) as { record: { body: Record<string, unknown> & { node: string; consumer: string }; nodeSig: string; consumerSig: string } }[])[0]!
    t.equal(record.body.node, b.did)
    t.equal(record.body.consumer, a.did)
    t.same(record.body.artifacts, [moduleDigest], 'the record names the module it ran')
    t.equal(record.body.output, got[0]!.digest, 'and the output digest results checked')
    t.same(record.body.exit, { state: 'exited', code: 0 })
    t.ok(stockVerify(record.body.node, 'noir:provenance:v1', record.body, record.nodeSig), "the node's signature verifies with node:crypto from its DID alone")
    t.ok(stockVerify(record.body.consumer, 'noir:provenance-consumer:v1', { body: record.body, nodeSig: record.nodeSig }, record.consumerSig), "and so does the consumer's countersignature")
    const forged = { ...record.body, exit: { state: 'exited', code: 1 } }
    t.notOk(stockVerify(record.body.node, 'noir:provenance:v1', forged, record.nodeSig), 'an altered record does not verify')

    // the bystander finds a holder through the DHT (it is told of no node)
    await eventually(async () => (await c.api.post<{ digest: string }>('/v1/artifacts/fetch', { digest: moduleDigest })).digest === moduleDigest, 60_000, 2000)
    t.ok((await held(c)).includes(moduleDigest), 'a node told of no holder fetches the module through DHT provider records')
  })

  await t.test('an SDK actor bundle (with its imports) only the consumer has runs on the worker', async (t) => {
    writeFileSync(join(work, 'counter.yaml'), [
      'apiVersion: noir/v1', 'kind: service', 'name: counter',
      `runtime: { type: actor, bundle: ${JSON.stringify(counter)} }`,
      'resources: { cpu: 0.3, memory: 192Mi }', 'constraints: { labels: { role: worker } }', '',
    ].join('\n'))
    const v = await deploy(join(work, 'counter.yaml'))
    t.equal(v.phase, 'running', `the counter runs (${v.reason ?? ''})`)
    const r = v.replicas[0]!
    t.equal(r.node, b.did)
    const addr = `${b.did}/alloc/c-${r.contractId}/workload`
    const { reply } = await eventually(async () => await a.api.post<{ reply: unknown }>('/v1/actor/send', { to: addr, behavior: '/counter/get', body: null, ask: true, timeoutMs: 10_000 }), 30_000, 500)
    t.equal(reply, 0, 'the consumer asks the counter the worker runs from the fetched bundle')
    await noir(a.home, 'stop', v.id)
  })

  await t.test('a container image only in the consumer\'s Docker travels as an archive and runs by id', async (t) => {
    const marker = randomBytes(8).toString('hex')
    const tag = `noir-test/artifact-${marker}:latest`
    writeFileSync(join(work, 'Dockerfile'), `FROM ${BASE_IMAGE}\nRUN echo ${marker} > /marker\n`)
    const built = spawnSync('docker', ['build', '-q', '-t', tag, '--label', 'noir.test=artifacts', work], { encoding: 'utf8' })
    t.equal(built.status, 0, `docker build: ${built.stderr}`)
    const imageId = built.stdout.trim()
    images.push(imageId)
    writeFileSync(join(work, 'image-job.yaml'), [
      'apiVersion: noir/v1', 'kind: job', 'name: image-marker',
      `runtime: { type: container, image: ${JSON.stringify(tag)}, imageArchive: local, command: [sh, -c, "cat /marker > /state/marker"] }`,
      'resources: { cpu: 0.2, memory: 32Mi }', 'constraints: { labels: { role: worker } }', 'job: { retries: 0 }', '',
    ].join('\n'))
    const prep = await noir(a.home, 'deploy', join(work, 'image-job.yaml'), '--prepare', '--json')
    t.equal(prep.code, 0, prep.stderr.slice(0, 300))
    const prepared = JSON.parse(prep.stdout) as { runtime: { image: string; imageArchive: string } }
    t.equal(prepared.runtime.image, imageId, 'the workload names the image by its id, not its tag')
    // both daemons share this machine's Docker: the image goes, so only the consumer's artifact store has it
    t.equal(spawnSync('docker', ['rmi', '-f', imageId]).status, 0)
    t.not(spawnSync('docker', ['image', 'inspect', imageId]).status, 0, 'the image is gone from Docker')
    writeFileSync(join(work, 'image-job.json'), JSON.stringify(prepared))
    const v = await deploy(join(work, 'image-job.json'))
    t.equal(v.phase, 'completed', `the job ran from the loaded archive (${v.reason ?? ''})`)
    t.ok((await held(b)).includes(prepared.runtime.imageArchive), 'the worker fetched the image archive')
    const out = join(work, 'image-out')
    t.equal((await noir(a.home, 'results', v.id, '-o', out)).code, 0)
    t.equal(readFileSync(join(out, 'marker'), 'utf8').trim(), marker, 'the output shows the image that ran is the one built')
  })

  await t.test('a tampered artifact is refused by the worker, which runs nothing', async (t) => {
    writeFileSync(join(work, 'tampered.wasm'), wasmFixture('exit-zero'))
    writeFileSync(join(work, 'tampered.yaml'), [
      'apiVersion: noir/v1', 'kind: job', 'name: tampered',
      'runtime: { type: wasm, module: ./tampered.wasm }',
      'resources: { cpu: 0.2, memory: 64Mi }', 'constraints: { labels: { role: worker } }', 'job: { retries: 0 }', '',
    ].join('\n'))
    const prep = await noir(a.home, 'deploy', join(work, 'tampered.yaml'), '--prepare', '--json')
    const w = JSON.parse(prep.stdout) as { runtime: { module: string } }
    // the consumer's copy changes on its disk after it was named: the digest no longer fits the bytes served
    const blob = join(a.home, 'artifacts', 'blobs', w.runtime.module.slice(7))
    chmodSync(blob, 0o600)
    writeFileSync(blob, wasmFixture('exit-code'))
    writeFileSync(join(work, 'tampered.json'), JSON.stringify(w))
    const v = await deploy(join(work, 'tampered.json'))
    t.not(v.phase, 'completed', 'the job does not run')
    t.match(JSON.stringify(v.events) + (v.reason ?? ''), /ArtifactDigestMismatchError/, 'the worker says why: the bytes do not match the digest')
    t.notOk((await held(b)).includes(w.runtime.module), 'and kept nothing')
  })
})
