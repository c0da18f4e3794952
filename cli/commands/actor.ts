// `noir actor send ADDRESS BEHAVIOR JSON [--ask]`: a signed message from this node to any actor.
import { ApiClient } from '../api-client.ts'
import { intOption, parseCommandArgs, printJson, printLine, UsageError, type Command } from '../command.ts'

export const actorSend: Command = {
  path: ['actor', 'send'],
  summary: 'send a message to an actor (tell, or --ask for the answer)',
  usage: `Usage: noir actor send ADDRESS BEHAVIOR JSON [--ask] [--timeout MS] [--json]

ADDRESS is <node did>/<actor path> (e.g. did:key:z6Mk.../node), BEHAVIOR a path (e.g. /noir/node/ping),
JSON the body. The running node signs and sends it. With --ask, waits for the answer and prints it.
--json prints { sent: true } for a tell and { reply } for an ask. A refusal exits 1 with its typed name.`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommandArgs(argv, { ask: { type: 'boolean' }, timeout: { type: 'string' } }, { min: 2, max: 3, usage: 'usage: noir actor send ADDRESS BEHAVIOR JSON [--ask]' })
    const ask = values.ask === true
    const timeoutMs = intOption(values.timeout, '--timeout')
    const [to, behavior, json] = positionals as [string, string, string | undefined]
    let body: unknown = null
    if (json !== undefined) {
      try {
        body = JSON.parse(json)
      } catch (err) {
        throw new UsageError(`the body is not JSON: ${(err as Error).message}`)
      }
    }
    const r = await ApiClient.forHome(ctx.home).post<{ sent?: boolean; reply?: unknown }>('/v1/actor/send', { to, behavior, body, ask, ...(timeoutMs ? { timeoutMs } : {}) })
    if (ctx.json) return printJson(ctx, r)
    if (ask) printLine(ctx, JSON.stringify(r.reply, null, 2))
    else printLine(ctx, 'sent')
  },
}

export const actorCommands: Command[] = [actorSend]
