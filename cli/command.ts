// What a `noir` subcommand is. Each lives in cli/commands/<name>.ts and is listed in cli/commands/index.ts.
import { homedir } from 'node:os'
import { join } from 'node:path'

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
