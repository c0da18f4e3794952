// The node's log file stays bounded (spec/observability.md "Logs"): rotated at maxBytes, `files` old ones
// kept, the newest lines in the live file, every line whole JSON; lines carry the context's fields (trace ids).
import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createJsonLog } from '../daemon/log.ts'

t.test('a log file rotates at maxBytes and keeps `files` old ones', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-log-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const target = join(dir, 'node.log')
  const maxBytes = 65_536
  let n = 0
  const log = createJsonLog({ target, retention: { maxBytes, files: 2 }, context: () => ({ trace: 'a'.repeat(32), span: String(n).padStart(16, '0') }) })
  for (; n < 5000; n++) log.info('line', { n, pad: 'x'.repeat(100) })
  await log.close()
  const files = readdirSync(dir).sort()
  t.same(files, ['node.log', 'node.log.1', 'node.log.2'], 'the live file and two old ones, no more')
  const line = Buffer.byteLength(readFileSync(target, 'utf8').split('\n')[0]!) + 1
  for (const f of files) t.ok(statSync(join(dir, f)).size <= maxBytes + line, `${f} is within maxBytes (and one line)`)
  const live = readFileSync(target, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { n: number; trace: string; span: string; svc?: string })
  t.equal(live.at(-1)!.n, 4999, 'the newest line is in the live file')
  const older = readFileSync(join(dir, 'node.log.1'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { n: number })
  t.equal(older.at(-1)!.n + 1, live[0]!.n, 'the previous file ends where the live one starts: no line lost at a rotation')
  t.equal(live.at(-1)!.trace, 'a'.repeat(32), 'lines carry the trace id of their moment')
  t.equal(live.at(-1)!.span, '0000000000004999')
})

t.test('files: 0 keeps the live file only', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-log-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const log = createJsonLog({ target: join(dir, 'node.log'), retention: { maxBytes: 65_536, files: 0 } })
  for (let n = 0; n < 3000; n++) log.info('line', { n, pad: 'x'.repeat(100) })
  await log.close()
  t.same(readdirSync(dir), ['node.log'])
  t.ok(statSync(join(dir, 'node.log')).size <= 65_536 + 200)
})
