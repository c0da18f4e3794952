// What a `noir` subcommand is. Each lives in cli/commands/<name>.ts and is listed in cli/commands/index.ts.
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'

export interface CommandContext {
  /** NOIR_HOME: `--home DIR`, else $NOIR_HOME, else ~/.noir. */
  readonly home: string
  /** `--json`: print one stable JSON document (documented in spec/cli.md) instead of text. */
  readonly json: boolean
  readonly env: NodeJS.ProcessEnv
  readonly stdout: NodeJS.WritableStream
  readonly stderr: NodeJS.WritableStream
  /** Set when the process should stop (SIGINT/SIGTERM), for long-running commands. */
  readonly signal: AbortSignal
}

export interface Command {
  /** Words that select it, e.g. ['node', 'start'] or ['peers']. */
  readonly path: readonly string[]
  /** One line for `noir --help`. */
  readonly summary: string
  /** Full usage text for `noir <cmd> --help`. */
  readonly usage: string
  /** Runs with the arguments after the command words (global options already removed). Returns an exit code. */
  run(ctx: CommandContext, argv: string[]): Promise<number | void>
}

/** A user mistake on the command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

export function defaultHome(env: NodeJS.ProcessEnv): string {
  return env.NOIR_HOME && env.NOIR_HOME.length > 0 ? env.NOIR_HOME : join(homedir(), '.noir')
}

/** Writes a value as the command's JSON output (one document, newline-terminated). */
export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

export function printLine(ctx: CommandContext, line = ''): void {
  ctx.stdout.write(line + '\n')
}

/** What parseCommandArgs returns: option values by name (strings and booleans) and the positionals. */
export interface CommandArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>
  positionals: string[]
}

/**
 * Parses a command's arguments the one way every command does: options strictly (an unknown option, a
 * missing value or a value given to a switch is a UsageError, exit 2), and between `min` and `max`
 * positionals (`usage` is the line printed when they are wrong).
 */
export function parseCommandArgs(argv: string[], options: ParseArgsOptionsConfig, positionals: { min: number; max: number; usage: string }): CommandArgs {
  let r: CommandArgs
  try {
    r = parseArgs({ args: argv, options, allowPositionals: positionals.max > 0, strict: true }) as CommandArgs
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (r.positionals.length < positionals.min || r.positionals.length > positionals.max) throw new UsageError(positionals.usage)
  return r
}

/** An option that must be a whole number within [min, max] (undefined when not given); else a UsageError. */
export function intOption(value: unknown, flag: string, min = 1, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined
  const n = typeof value === 'string' && /^-?[0-9]+$/.test(value.trim()) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''} (got ${JSON.stringify(value)})`)
  return n
}

