// Every command parses its command line one way (cli/command.ts parseCommandArgs, or node:util parseArgs):
// an unknown option or a bad value is a usage error, exit 2, with a line saying what was wrong, never
// silently dropped (spec/cli.md). No daemon is needed: the command line is refused before anything runs.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const bin = join(dirname(fileURLToPath(import.meta.url)), '../bin/noir.js')
const home = mkdtempSync(join(tmpdir(), 'noir-usage-'))
t.teardown(() => rmSync(home, { recursive: true, force: true }))

function noir(...args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, '--home', home, ...args], { timeout: 30_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr })
    })
  })
}

const cases: [string[], RegExp][] = [
  [['ping', 'did:key:z6Mkabc', '--timeout', 'abc'], /--timeout must be a whole number/],
  [['ping', 'did:key:z6Mkabc', '--timeout', '0'], /--timeout must be a whole number from 1/],
  [['ping'], /needs one DID/],
  [['join', '/ip4/127.0.0.1/tcp/1', '--bogus'], /Unknown option '--bogus'/],
  [['join', 'a', 'b'], /needs one MULTIADDR/],
  [['actor', 'send', 'did:key:z6Mkabc/node', '/noir/node/ping', '--timeout', '1.5'], /--timeout must be a whole number/],
  [['deploy', '--bogus'], /Unknown option '--bogus'/],
  [['deploy', 'w.yaml', '--max-price', '0.1234567'], /'--max-price' has 7 decimals; NLC has 6/],
  [['deploy', 'w.yaml', '--max-price=-1'], /'--max-price' must be an amount of NLC/],
  [['deploy', 'w.yaml', '--max-price', '1e3'], /'--max-price' must be an amount of NLC/],
  [['logs', 'x', '--replica', 'two'], /--replica must be/],
  [['node', 'actors', '--bogus'], /Unknown option '--bogus'/],
  [['node', 'actors', 'extra'], /Unexpected argument 'extra'/],
]

for (const [args, why] of cases) {
  t.test(`noir ${args.join(' ')}: exit 2, saying why`, async (t) => {
    const r = await noir(...args)
    t.equal(r.code, 2, `exit 2 (stderr: ${r.stderr.trim()})`)
    t.match(r.stderr, why)
  })
}
