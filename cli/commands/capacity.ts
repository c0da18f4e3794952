// `noir capacity ...` after `noir login --gateway URL` (spec/capacity.md): quote capacity, reserve a quote,
// list, show and cancel reservations; `noir deploy FILE --reservation ID` runs inside one. Amounts in NLC.
import { clientOf, readLogin } from '../gateway-login.ts'
import { nlcDecimal } from '../../ledger/units.ts'
import { intOption, parseCommandArgs, printJson, printLine, UsageError, type Command, type CommandContext } from '../command.ts'
import type { CapacityQuote, CapacityRequest, NoirClient, Reservation } from '../../client/noir-client.ts'

const gateway = (ctx: CommandContext): NoirClient => {
  const login = readLogin(ctx.home)
  if (!login) throw new UsageError('capacity is reserved at a gateway: noir login --gateway URL first')
  return clientOf(login)
}
const nlc = (micro: string): string => `${nlcDecimal(BigInt(micro))} NLC`
const shape = (x: CapacityQuote | Reservation): string =>
  `${x.slots} slot(s) of ${x.resources.cpu} cpu, ${Math.round(x.resources.memoryBytes / 2 ** 20)} MiB${x.resources.gpu ? `, ${x.resources.gpu} gpu` : ''}, ${x.lane}, ${x.runtime}, ${Math.round(x.durationSeconds / 60)} min`

function printReservation(ctx: CommandContext, r: Reservation): void {
  printLine(ctx, `${r.id}  ${r.state}  ${shape(r)}`)
  printLine(ctx, `  ${r.slotsUsed}/${r.slots} slots used  ${nlc(r.pricePerHour)}/h  total ${nlc(r.total)}${r.charged !== null ? `  charged ${nlc(r.charged)}` : ''}  until ${new Date(r.endsAt).toISOString()}`)
  for (const d of r.deployments) printLine(ctx, `  ${d.deploymentId}  ${d.slots} slot(s)  ${d.running ? 'inside' : 'ended'}`)
}

const QUOTE_USAGE = 'usage: noir capacity quote --cpu N --memory QTY --slots N (--minutes N | --hours N) [--lane best-effort|protected] [--runtime container|wasm|actor] [--reserve] [--json]'

export const capacityQuoteCommand: Command = {
  path: ['capacity', 'quote'],
  summary: 'ask the gateway what capacity costs now (resources per slot, slots, how long); --reserve takes it',
  usage: `Usage: ${QUOTE_USAGE.slice(7)}

The gateway asks the mesh for signed bids on that shape and quotes what they say: the price of the slots
placement would pick (and a protected lane's standby) for the duration. A quote keeps 5 minutes; reserve it
with \`noir capacity reserve QUOTE\` (or --reserve here): its total is held from the wallet.`,
  async run(ctx, argv) {
    const { values } = parseCommandArgs(argv, {
      cpu: { type: 'string' }, memory: { type: 'string' }, slots: { type: 'string' }, minutes: { type: 'string' }, hours: { type: 'string' },
      lane: { type: 'string' }, runtime: { type: 'string' }, reserve: { type: 'boolean' },
    }, { min: 0, max: 0, usage: QUOTE_USAGE })
    const cpu = Number(values.cpu)
    if (values.cpu === undefined || !(cpu > 0)) throw new UsageError(`--cpu is the cores per slot, > 0; ${QUOTE_USAGE}`)
    if (typeof values.memory !== 'string') throw new UsageError(`--memory is the memory per slot (e.g. 256Mi); ${QUOTE_USAGE}`)
    const slots = intOption(values.slots, '--slots', 1, 100) ?? 1
    const minutes = intOption(values.minutes, '--minutes', 1, 31 * 1440)
    const hours = intOption(values.hours, '--hours', 1, 31 * 24)
    if ((minutes === undefined) === (hours === undefined)) throw new UsageError(`one of --minutes or --hours; ${QUOTE_USAGE}`)
    if (values.lane !== undefined && values.lane !== 'best-effort' && values.lane !== 'protected') throw new UsageError(`--lane is best-effort or protected; ${QUOTE_USAGE}`)
    if (values.runtime !== undefined && !['container', 'wasm', 'actor'].includes(values.runtime as string)) throw new UsageError(`--runtime is container, wasm or actor; ${QUOTE_USAGE}`)
    const request: CapacityRequest = {
      resources: { cpu, memory: values.memory }, slots, durationSeconds: minutes !== undefined ? minutes * 60 : hours! * 3600,
      ...(values.lane !== undefined ? { lane: values.lane as 'best-effort' | 'protected' } : {}),
      ...(values.runtime !== undefined ? { runtime: values.runtime as 'container' | 'wasm' | 'actor' } : {}),
    }
    const c = gateway(ctx)
    const q = await c.quoteCapacity(request)
    const r = values.reserve === true ? await c.reserveCapacity(q.id) : undefined
    if (ctx.json) return printJson(ctx, r ? { quote: q, reservation: r } : q)
    printLine(ctx, `quote ${q.id}: ${shape(q)}`)
    printLine(ctx, `  ${nlc(q.pricePerHour)}/h, total ${nlc(q.total)} (from ${q.quotedBy.bids} bid(s) of ${q.quotedBy.asked} node(s) asked); keeps until ${new Date(q.expiresAt).toISOString()}`)
    if (r) printReservation(ctx, r)
    else printLine(ctx, `reserve it: noir capacity reserve ${q.id}`)
  },
}

export const capacityReserveCommand: Command = {
  path: ['capacity', 'reserve'],
  summary: 'reserve a capacity quote (its total is held from the wallet)',
  usage: 'Usage: noir capacity reserve QUOTE [--json]\n\nReserving the same quote again answers the same reservation.',
  async run(ctx, argv) {
    const { positionals } = parseCommandArgs(argv, {}, { min: 1, max: 1, usage: 'usage: noir capacity reserve QUOTE [--json]' })
    const r = await gateway(ctx).reserveCapacity(positionals[0]!)
    if (ctx.json) return printJson(ctx, r)
    printReservation(ctx, r)
    printLine(ctx, `deploy inside it: noir deploy FILE --reservation ${r.id}`)
  },
}

export const capacityListCommand: Command = {
  path: ['capacity'],
  summary: 'the account\'s capacity reservations at the gateway (noir capacity quote|reserve|show|cancel)',
  usage: 'Usage: noir capacity [--json]\n\nSee also: noir capacity quote, noir capacity reserve, noir capacity show ID, noir capacity cancel ID.',
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir capacity [--json] (see noir capacity quote --help)' })
    const list = await gateway(ctx).reservations()
    if (ctx.json) return printJson(ctx, { reservations: list })
    if (list.length === 0) return printLine(ctx, 'no reservations (noir capacity quote ...)')
    for (const r of list) printReservation(ctx, r)
  },
}

export const capacityShowCommand: Command = {
  path: ['capacity', 'show'],
  summary: 'one capacity reservation: its slots, the deployments inside, its charge',
  usage: 'Usage: noir capacity show ID [--json]',
  async run(ctx, argv) {
    const { positionals } = parseCommandArgs(argv, {}, { min: 1, max: 1, usage: 'usage: noir capacity show ID [--json]' })
    const r = await gateway(ctx).reservation(positionals[0]!)
    if (ctx.json) return printJson(ctx, r)
    printReservation(ctx, r)
  },
}

export const capacityCancelCommand: Command = {
  path: ['capacity', 'cancel'],
  summary: 'end a capacity reservation now (what runs inside stops; the minutes it lasted are charged)',
  usage: 'Usage: noir capacity cancel ID [--json]',
  async run(ctx, argv) {
    const { positionals } = parseCommandArgs(argv, {}, { min: 1, max: 1, usage: 'usage: noir capacity cancel ID [--json]' })
    const r = await gateway(ctx).cancelReservation(positionals[0]!)
    if (ctx.json) return printJson(ctx, r)
    printReservation(ctx, r)
  },
}

export const capacityCommands: Command[] = [capacityListCommand, capacityQuoteCommand, capacityReserveCommand, capacityShowCommand, capacityCancelCommand]
