// `noir stop ID`: stops a deployment: its replicas stop, its contracts end (on both sides). It says
// "stopped" only when every node confirmed; otherwise it names each replica that did not stop and why,
// and exits 1 (running it again asks those nodes again).
import { deploymentsTarget } from '../gateway-login.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'

export const stopCommand: Command = {
  path: ['stop'],
  summary: 'stop a deployment (replicas stop, contracts end)',
  usage: 'Usage: noir stop ID [--json]\n\nExits 1 when a node did not confirm that its replica stopped (each one is named, with the reason).',
  async run(ctx, argv) {
    if (argv.length !== 1) throw new UsageError('noir stop ID')
    const v = await deploymentsTarget(ctx.home).stop(argv[0]!)
    const failures = v.stopFailures ?? []
    if (ctx.json) printJson(ctx, v)
    else if (failures.length === 0) printLine(ctx, `${v.id}: ${v.phase}`)
    else {
      printLine(ctx, `${v.id}: ${failures.length} replica(s) not confirmed stopped`)
      for (const f of failures) ctx.stderr.write(`noir: ${f.slot} on node ${f.node} (contract ${f.contractId}) did not stop: ${f.error}\n`)
    }
    return failures.length === 0 ? 0 : 1
  },
}
