// Failpoints: armed from the environment only, they kill the process (SIGKILL, as kill -9) at the named
// boundary and hit; a bad spec is a typed error; a wrapped step passes `before`, runs, passes `after`, and the
// target's own methods still run as the target (its #private fields intact).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { Failpoints, InvalidFailpointError, parseFailpoints, withFailpoints, FAILPOINTS_ENV } from '../failpoints.ts'

t.test('a spec parses into names and which hit kills', async (t) => {
  t.same([...parseFailpoints('orchestrator.commit.after')], [['orchestrator.commit.after', 1]])
  t.same([...parseFailpoints(' a.b@3 , provider.reserve.before ')], [['a.b', 3], ['provider.reserve.before', 1]])
  t.same([...parseFailpoints(undefined)], [])
  t.same([...parseFailpoints('')], [])
  for (const bad of ['nodots', 'A.B', 'a.b@0', 'a.b@x', 'a.b@1@2', 'a..b', '../etc.passwd']) {
    t.throws(() => parseFailpoints(bad), InvalidFailpointError, `'${bad}' refused`)
  }
})

t.test('the armed hit dies, earlier and other hits do not', async (t) => {
  const died: string[] = []
  const fp = new Failpoints(parseFailpoints('x.y@2'), { die: (n) => died.push(n) })
  fp.hit('x.y')
  fp.hit('x.z')
  t.same(died, [], 'first hit passes')
  fp.hit('x.y')
  t.same(died, ['x.y'], 'second hit dies')
  fp.hit('x.y')
  t.same(died, ['x.y'], 'only that hit')
  t.same(fp.reached(), { 'x.y': 3, 'x.z': 1 })
})

t.test('a wrapped step: before, the step, after; other methods and #private fields untouched', async (t) => {
  class Steps {
    #log: string[] = []
    get log(): string[] {
      return this.#log
    }
    async commit(n: number): Promise<number> {
      this.#log.push(`commit ${n}`)
      return n * 2
    }
    async fail(): Promise<void> {
      this.#log.push('fail')
      throw new Error('boom')
    }
    plain(): number {
      return this.#log.length
    }
  }
  const target = new Steps()
  const prev = process.env[FAILPOINTS_ENV]
  delete process.env[FAILPOINTS_ENV]
  const wrapped = withFailpoints(target, 'area', ['commit', 'fail'])
  if (prev !== undefined) process.env[FAILPOINTS_ENV] = prev
  t.equal(await wrapped.commit(21), 42)
  await t.rejects(wrapped.fail(), /boom/, 'a failing step still rejects (after is passed on the way out)')
  t.equal(wrapped.plain(), 2, 'an unwrapped method runs as the target')
  t.same(wrapped.log, ['commit 21', 'fail'], 'a getter reads the target')
})

t.test('armed from the environment, a real process dies by SIGKILL exactly there', async (t) => {
  const script = `
    import { failpoint } from ${JSON.stringify(new URL('../failpoints.ts', import.meta.url).href)}
    process.stdout.write('a;'); failpoint('test.step.before')
    process.stdout.write('b;'); failpoint('test.step.after')
    process.stdout.write('c;')
  `
  const run = (env: string | undefined) => spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8', env: { ...process.env, [FAILPOINTS_ENV]: env ?? '' },
  })
  const none = run(undefined)
  t.equal(none.stdout, 'a;b;c;', 'unarmed: runs through')
  t.equal(none.status, 0)
  const armed = run('test.step.after')
  t.equal(armed.stdout, 'a;b;', 'stops at the armed point')
  t.equal(armed.signal, 'SIGKILL', 'killed, as kill -9')
  t.match(armed.stderr, /failpoint reached: dying/)
  const bad = run('not a name')
  t.not(bad.status, 0, 'a bad spec fails the process loudly')
  t.match(bad.stderr, /InvalidFailpointError/)
})
