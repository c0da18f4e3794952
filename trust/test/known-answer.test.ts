import t from 'tap'
import { WASI } from 'node:wasi'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { knownAnswerModule } from '../../appliance/executor/wasm/known-answer-module.ts'
import { knownAnswerDigest, knownAnswerOutput, newSeed } from '../known-answer.ts'
import { outputDigest } from '../digest.ts'
import { wasmApi } from '../../appliance/executor/wasm/wasm-api.ts'

async function run(env: Record<string, string>): Promise<{ code: number; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'kat-'))
  const file = join(dir, 'out')
  const fd = openSync(file, 'w')
  try {
    const wasi = new WASI({ version: 'preview1', args: ['m'], env, stdout: fd, returnOnExit: true })
    const inst = await wasmApi!.instantiate(await wasmApi!.compile(knownAnswerModule()), { ...wasi.getImportObject(), noir: { stop_requested: () => 0 } } as never)
    const code = wasi.start(inst as never)
    closeSync(fd)
    return { code, out: readFileSync(file, 'utf8') }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

t.test('the WASI module prints what the reference computes, for any seed, whatever else is in its environment', async (t) => {
  for (const seed of ['a', newSeed(), newSeed()]) {
    const r = await run({ NOIR_SLOT: 'job-1/0', SEED: seed, OTHER: 'SEED=no' })
    t.equal(r.code, 0)
    t.equal(r.out, `${knownAnswerOutput(seed)}\n`)
    t.equal(outputDigest(0, [r.out.trimEnd()]), knownAnswerDigest(seed))
  }
  t.not(knownAnswerOutput('a'), knownAnswerOutput('b'), 'another seed, another answer')
  t.equal((await run({ NOIR_SLOT: 'x' })).code, 3, 'no SEED: exit 3')
})

t.test('the output digest covers the exit code and every stdout line', async (t) => {
  t.not(outputDigest(0, ['a']), outputDigest(1, ['a']))
  t.not(outputDigest(0, ['a']), outputDigest(0, ['a', '']))
  t.match(outputDigest(0, []), /^sha256:[0-9a-f]{64}$/)
})
