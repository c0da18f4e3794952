// `noir catalog add|list|rm`: the owner's catalog of modules, bundles, kernels and root filesystems that
// workloads from the mesh may name (spec/catalog.md). Works on the node home directly; a running daemon reads
// the catalog at each use, so a change needs no restart.
import { Catalog, CATALOG_KINDS } from '../../appliance/catalog/catalog.ts'
import { InvalidCatalogEntryError } from '../../appliance/errors.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'

export const catalogCommands: Command[] = [
  {
    path: ['catalog', 'add'],
    summary: 'make a file available to workloads by name (copied into the node home, digest recorded)',
    usage: `Usage: noir catalog add KIND NAME FILE [--json]

KIND is ${CATALOG_KINDS.join(', ')}; NAME matches ^[a-z0-9][a-z0-9._-]{0,63}$. A workload then names it
(runtime.module / bundle / kernel / rootfs: NAME). FILE is copied in; replacing an entry takes effect at once.`,
    async run(ctx, argv) {
      if (argv.length !== 3) throw new UsageError('noir catalog add KIND NAME FILE')
      const e = new Catalog(ctx.home).add(argv[0]!, argv[1]!, argv[2]!)
      if (ctx.json) return printJson(ctx, e)
      printLine(ctx, `${e.kind}/${e.name}: ${e.bytes} bytes, sha256 ${e.sha256}`)
    },
  },
  {
    path: ['catalog', 'list'],
    summary: 'list the catalog entries workloads may name',
    usage: `Usage: noir catalog list [--json]

--json prints { entries: [{ kind, name, sha256, bytes, addedAt }] }.`,
    async run(ctx, argv) {
      if (argv.length > 0) throw new UsageError(`unexpected argument '${argv[0]}'`)
      const entries = new Catalog(ctx.home).list()
      if (ctx.json) return printJson(ctx, { entries })
      if (entries.length === 0) return printLine(ctx, 'the catalog is empty (noir catalog add KIND NAME FILE)')
      for (const e of entries) printLine(ctx, `${`${e.kind}/${e.name}`.padEnd(40)} ${String(e.bytes).padStart(10)}  ${e.sha256.slice(0, 16)}`)
    },
  },
  {
    path: ['catalog', 'rm'],
    summary: 'remove a catalog entry',
    usage: 'Usage: noir catalog rm KIND NAME',
    async run(ctx, argv) {
      if (argv.length !== 2) throw new UsageError('noir catalog rm KIND NAME')
      if (!new Catalog(ctx.home).remove(argv[0]!, argv[1]!)) throw new InvalidCatalogEntryError(`no catalog entry ${argv[0]}/${argv[1]}`)
      printLine(ctx, `removed ${argv[0]}/${argv[1]}`)
    },
  },
]
