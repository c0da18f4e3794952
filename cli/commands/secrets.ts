// `noir secrets set|ls|rm` (spec/cli.md "Secrets", spec/secrets.md): the account's secrets at the gateway of
// `noir login`. A value never goes on the command line (where `ps` and the shell's history show it): it is
// read from $NOIR_SECRET_VALUE or from a file; no command ever prints one.
import { readFileSync } from 'node:fs'
import { clientOf, readLogin } from '../gateway-login.ts'
import { parseCommandArgs, printJson, printLine, UsageError, type Command, type CommandContext } from '../command.ts'
import type { NoirClient } from '../../client/noir-client.ts'

const NAME = /^[A-Za-z0-9_.-]{1,128}$/

function gateway(ctx: CommandContext): NoirClient {
  const login = readLogin(ctx.home)
  if (!login) throw new UsageError('secrets are kept by a gateway: log in first (noir login --gateway URL ...)')
  return clientOf(login)
}

function nameOf(v: string | undefined): string {
  if (v === undefined || !NAME.test(v)) throw new UsageError('a secret name is 1-128 of A-Z a-z 0-9 _ . -')
  return v
}

const setCommand: Command = {
  path: ['secrets', 'set'],
  summary: 'create or rotate a secret at the gateway (a rotation restarts the replicas that use it)',
  usage: `Usage: noir secrets set NAME [--from-file FILE]

Stores secret NAME for the logged-in account; the value is read from FILE, else from $NOIR_SECRET_VALUE (never
from the command line). Setting an existing NAME rotates it: its version goes up and the running replicas whose
workload names it start again with the new value. A workload names it with \`secrets: [{ name: NAME, env: VAR }]\`.`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommandArgs(argv, { 'from-file': { type: 'string' } }, { min: 1, max: 1, usage: 'noir secrets set NAME [--from-file FILE]' })
    const name = nameOf(positionals[0])
    let value: string | undefined
    if (typeof values['from-file'] === 'string') {
      try {
        value = readFileSync(values['from-file'], 'utf8')
      } catch (err) {
        throw new UsageError(`cannot read --from-file ${values['from-file']}: ${(err as Error).message}`)
      }
    } else value = ctx.env.NOIR_SECRET_VALUE
    if (value === undefined || value.length === 0) throw new UsageError('the value comes from --from-file FILE or $NOIR_SECRET_VALUE (both empty)')
    const r = await gateway(ctx).setSecret(name, value)
    if (ctx.json) return printJson(ctx, r)
    const restarted = r.rotated.reduce((n, d) => n + d.restarted.length, 0)
    const failed = r.rotated.reduce((n, d) => n + d.failed.length, 0)
    printLine(ctx, `${r.created ? 'created' : 'rotated'} secret ${r.name} (version ${r.version})${r.created ? '' : `; ${restarted} replica(s) restarted${failed > 0 ? `, ${failed} not` : ''}`}`)
  },
}

const lsCommand: Command = {
  path: ['secrets', 'ls'],
  summary: 'list the account\'s secrets at the gateway (names and versions, never values)',
  usage: 'Usage: noir secrets ls\n\nLists the secrets of the logged-in account: name, version, when last set. Values are never shown.',
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'noir secrets ls' })
    const list = await gateway(ctx).secrets()
    if (ctx.json) return printJson(ctx, { secrets: list })
    if (list.length === 0) return printLine(ctx, 'no secrets')
    printLine(ctx, 'NAME'.padEnd(32) + 'VERSION'.padEnd(9) + 'UPDATED')
    for (const s of list) printLine(ctx, s.name.padEnd(32) + String(s.version).padEnd(9) + new Date(s.updatedAt).toISOString())
  },
}

const rmCommand: Command = {
  path: ['secrets', 'rm'],
  summary: 'delete a secret at the gateway',
  usage: 'Usage: noir secrets rm NAME\n\nDeletes secret NAME of the logged-in account. Running replicas keep the value they got at start; a later start of one that names it fails.',
  async run(ctx, argv) {
    const { positionals } = parseCommandArgs(argv, {}, { min: 1, max: 1, usage: 'noir secrets rm NAME' })
    const name = nameOf(positionals[0])
    await gateway(ctx).deleteSecret(name)
    if (ctx.json) return printJson(ctx, { name, deleted: true })
    printLine(ctx, `deleted secret ${name}`)
  },
}

export const secretsCommands: Command[] = [setCommand, lsCommand, rmCommand]
