// The `noir` command: global options, dispatch to a subcommand, one clear error line and a non-zero exit.
import { parseArgs } from 'node:util'
import { commands } from './commands/index.ts'
import { defaultHome, UsageError, type Command, type CommandContext } from './command.ts'

const globalUsage = (): string => {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length), 8)
  const lines = commands.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`)
  return [
    'noir: the NoirLedger command (a thin client of the local daemon, plus identity and node tools)',
    '',
    'Usage: noir [--home DIR] [--json] <command> [args]',
    '',
    'Commands:',
    ...lines,
    '',
    'Global options:',
    '  --home DIR   the node home (default $NOIR_HOME, else ~/.noir)',
    '  --json       machine-readable output (documented in spec/cli.md)',
    '  -h, --help   this help; `noir <command> --help` for one command',
  ].join('\n')
}

/** Splits global options (anywhere on the line) from the rest. */
function splitGlobals(argv: string[]): { home?: string; json: boolean; help: boolean; rest: string[] } {
  const rest: string[] = []
  let home: string | undefined
  let json = false
  let help = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--') { rest.push(...argv.slice(i)); break }
    if (a === '--json') json = true
    else if (a === '-h' || a === '--help') help = true
    else if (a === '--home') {
      const v = argv[++i]
      if (v === undefined) throw new UsageError('--home needs a directory')
      home = v
    } else if (a.startsWith('--home=')) home = a.slice('--home='.length)
    else rest.push(a)
  }
  return { home, json, help, rest }
}

/** The longest command path that prefixes the arguments. */
function findCommand(words: string[]): { command?: Command; consumed: number } {
  let best: Command | undefined
  for (const c of commands) {
    if (c.path.length <= words.length && c.path.every((w, i) => words[i] === w)) {
      if (!best || c.path.length > best.path.length) best = c
    }
  }
  return { command: best, consumed: best?.path.length ?? 0 }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const controller = new AbortController()
  const onSignal = (): void => controller.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const g = splitGlobals(argv)
    const { command, consumed } = findCommand(g.rest)
    if (!command) {
      if (g.rest.length === 0 || g.help) {
        process.stdout.write(globalUsage() + '\n')
        return g.rest.length === 0 && !g.help ? 2 : 0
      }
      throw new UsageError(`unknown command '${g.rest.join(' ')}' (see noir --help)`)
    }
    if (g.help) {
      process.stdout.write(command.usage.trimEnd() + '\n')
      return 0
    }
    const ctx: CommandContext = {
      home: g.home ?? defaultHome(env),
      json: g.json,
      env,
      stdout: process.stdout,
      stderr: process.stderr,
      signal: controller.signal,
    }
    const code = await command.run(ctx, g.rest.slice(consumed))
    return typeof code === 'number' ? code : 0
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err))
    const name = e.name && e.name !== 'Error' ? `${e.name}: ` : ''
    process.stderr.write(`noir: ${name}${e.message.split('\n')[0]}\n`)
    if (env.NOIR_DEBUG) process.stderr.write((e.stack ?? '') + '\n')
    // node:util parseArgs refuses a bad command line with ERR_PARSE_ARGS_* TypeErrors: those are usage errors too
    const usage = e instanceof UsageError || String((e as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS')
    return usage ? 2 : 1
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

// Re-exported so commands can parse their own options the same way.
export { parseArgs }

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2))
}
