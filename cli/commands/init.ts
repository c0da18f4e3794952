// `noir init`: the node's identity (if missing) and config.json (if missing). Safe to run again: it never
// replaces an existing identity or config, it says what it found.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Keystore, passphraseFrom, peerIdFromDid } from '../../identity/index.ts'
import { CONFIG_FILE, defaultConfig, saveConfig } from '../../appliance/daemon/config.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'
import { parseArgs } from 'node:util'

export const initCommand: Command = {
  path: ['init'],
  summary: 'create this node\'s identity and config.json (keeps existing ones)',
  usage: `Usage: noir init [--listen MULTIADDR]... [--bootstrap MULTIADDR]... [--no-mdns] [--relay] [--json]

Creates, in the node home ($NOIR_HOME, default ~/.noir):
  keystore/node.json  the node key (Ed25519), encrypted with NOIR_PASSPHRASE or a passphrase asked for
  config.json         listen addresses, bootstrap peers, mDNS, relay, trusted roots (spec/cli.md)
Whatever already exists is kept unchanged (run it again safely). The options only shape a new config.json.

--json prints { home, did, peerId, created: { identity, config } }.`,
  async run(ctx, argv) {
    let values: Record<string, unknown>
    try {
      ;({ values } = parseArgs({
        args: argv,
        options: { listen: { type: 'string', multiple: true }, bootstrap: { type: 'string', multiple: true }, 'no-mdns': { type: 'boolean' }, relay: { type: 'boolean' } },
        allowPositionals: false,
        strict: true,
      }))
    } catch (err) {
      throw new UsageError((err as Error).message)
    }
    let createdIdentity = false
    let did: string
    if (Keystore.exists(ctx.home)) {
      did = Keystore.publicDid(ctx.home)
    } else {
      const passphrase = await passphraseFrom(ctx.env, true, true)
      did = (await Keystore.create(ctx.home, passphrase)).did
      createdIdentity = true
    }
    let createdConfig = false
    if (!existsSync(join(ctx.home, CONFIG_FILE))) {
      const cfg = defaultConfig()
      if (values.listen) cfg.listen = values.listen as string[]
      if (values.bootstrap) cfg.bootstrap = values.bootstrap as string[]
      if (values['no-mdns']) cfg.mdns = false
      if (values.relay) cfg.relay = true
      saveConfig(ctx.home, cfg)
      createdConfig = true
    }
    const out = { home: ctx.home, did, peerId: peerIdFromDid(did).toString(), created: { identity: createdIdentity, config: createdConfig } }
    if (ctx.json) return printJson(ctx, out)
    printLine(ctx, `${createdIdentity ? 'created' : 'kept'} identity ${did}`)
    printLine(ctx, `${createdConfig ? 'created' : 'kept'} ${join(ctx.home, CONFIG_FILE)}`)
    printLine(ctx, `next: noir node start${ctx.home ? ` --home ${ctx.home}` : ''}`)
  },
}
