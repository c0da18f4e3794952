// Workloads that name artifacts by digest (spec/artifacts.md): a digest where a catalog name goes, an image
// archive only with the image id it holds, and the digests a runtime needs.
import t from 'tap'
import { validateWorkload, workloadArtifacts, workloadFromWire } from '../workload/workload.ts'
import { InvalidWorkloadError } from '../errors.ts'
import { carriesState } from '../orchestrator/effects.ts'

const d = (c: string): string => `sha256:${c.repeat(64)}`
const base = { apiVersion: 'noir/v1', kind: 'job', name: 'x', resources: { cpu: 0.1, memory: '16Mi' } }
const issues = (v: unknown): { path: string; reason: string }[] => {
  try {
    validateWorkload(v)
  } catch (err) {
    if (err instanceof InvalidWorkloadError) return err.issues
    throw err
  }
  return []
}

t.test('a module or bundle may be an artifact digest, and travels unchanged', async (t) => {
  const w = validateWorkload({ ...base, runtime: { type: 'wasm', module: d('a') } })
  t.same(workloadArtifacts(w.runtime), [d('a')])
  t.same(workloadFromWire(JSON.parse(JSON.stringify(w))), w, 'a workload naming a digest comes back from the wire unchanged')
  t.same(workloadArtifacts(validateWorkload({ ...base, runtime: { type: 'actor', bundle: d('b') } }).runtime), [d('b')])
  t.same(workloadArtifacts(validateWorkload({ ...base, runtime: { type: 'wasm', module: 'hello.wasm' } }).runtime), [], 'a catalog name is no artifact')
})

t.test('a path, an upper-case or short digest is refused naming the field', async (t) => {
  for (const module of ['./hello.wasm', '/etc/passwd', `sha256:${'A'.repeat(64)}`, 'sha256:abc', `sha512:${'a'.repeat(64)}`]) {
    const got = issues({ ...base, runtime: { type: 'wasm', module } })
    t.equal(got[0]?.path, '$.runtime.module', module)
    t.match(got[0]?.reason ?? '', /artifact digest/)
  }
})

t.test('an image archive needs the image id, and only for a container', async (t) => {
  const ok = validateWorkload({ ...base, runtime: { type: 'container', image: d('c'), imageArchive: d('e') } })
  t.same(workloadArtifacts(ok.runtime), [d('e')])
  t.equal(issues({ ...base, runtime: { type: 'container', image: 'busybox:latest', imageArchive: d('e') } })[0]?.path, '$.runtime.image', 'a tag with an archive is refused: it runs by id')
  t.ok(issues({ ...base, runtime: { type: 'wasm', module: d('a'), imageArchive: d('e') } }).some((i) => i.path === '$.runtime.imageArchive'))
  t.equal(issues({ ...base, runtime: { type: 'container', image: d('c'), imageArchive: 'local' } })[0]?.path, '$.runtime.imageArchive', "'local' is the CLI's word, never sent")
})

t.test('a microVM state disk: a size from 4MiB to 4GiB, for a microvm with a command; normalized to bytes; its state moves', async (t) => {
  const vm = { type: 'microvm', kernel: d('a'), initrd: d('b'), command: ['true'] }
  const w = validateWorkload({ ...base, runtime: { ...vm, stateDisk: '64Mi' } })
  t.equal(w.runtime.stateDisk, 64 * 1024 * 1024)
  t.same(workloadFromWire(JSON.parse(JSON.stringify(w))), w, 'unchanged through the wire')
  t.ok(carriesState(w), 'a migration carries its state (disk and memory)')
  t.notOk(carriesState(validateWorkload({ ...base, runtime: vm })), 'without it (and without stateDir) a microVM moves stateless')
  t.equal(issues({ ...base, runtime: { ...vm, stateDisk: '1Mi' } })[0]?.path, '$.runtime.stateDisk', 'too small')
  t.equal(issues({ ...base, runtime: { ...vm, stateDisk: '5Gi' } })[0]?.path, '$.runtime.stateDisk', 'larger than a state archive')
  t.equal(issues({ ...base, runtime: { type: 'wasm', module: d('a'), stateDisk: '64Mi' } })[0]?.path, '$.runtime.stateDisk', 'a microvm only')
  t.equal(issues({ ...base, runtime: { type: 'microvm', kernel: d('a'), stateDisk: '64Mi' } })[0]?.path, '$.runtime.stateDisk', 'needs the noir init (a command)')
})
