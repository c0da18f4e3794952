// `noir id new` and `noir id show`: the node's identity (one Ed25519 key = did:key = libp2p peer id).
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'
// identity/ (libp2p keys, did-jwt, level) is imported when a command runs, so `noir --help` and other commands stay fast.
const identity = (): Promise<typeof import('../../identity/index.ts')> => import('../../identity/index.ts')
import { printJson, printLine, UsageError, type Command, type CommandContext } from '../command.ts'

function parse(argv: string[], options: ParseArgsOptionsConfig, usage: string): { values: Record<string, unknown> } {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true })
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : String(err)} (usage: ${usage})`)
  }
}

interface IdentityView {
  did: string
  peerId: string
  publicKeyMultibase: string
  keystore: string
}

async function view(home: string, did: string): Promise<IdentityView> {
  const { peerIdFromDid, publicKeyMultibase, publicKeyFromDid, keystorePath } = await identity()
  return { did, peerId: peerIdFromDid(did).toString(), publicKeyMultibase: publicKeyMultibase(publicKeyFromDid(did)), keystore: keystorePath(home) }
}

function print(ctx: CommandContext, v: IdentityView, title?: string): void {
  if (ctx.json) return printJson(ctx, v)
  if (title) printLine(ctx, title)
  printLine(ctx, `did:        ${v.did}`)
  printLine(ctx, `peer id:    ${v.peerId}`)
  printLine(ctx, `public key: ${v.publicKeyMultibase}`)
  printLine(ctx, `keystore:   ${v.keystore}`)
}

export const idNew: Command = {
  path: ['id', 'new'],
  summary: 'create this node\'s identity (an encrypted Ed25519 key)',
  usage: `Usage: noir id new [--force] [--json]

Creates a new Ed25519 key in $HOME/keystore/node.json, encrypted with a passphrase taken from
NOIR_PASSPHRASE or asked for on the terminal. Prints the DID, the libp2p peer id and the public key.
Refuses to replace an existing identity unless --force is given.`,
  async run(ctx, argv) {
    const { values } = parse(argv, { force: { type: 'boolean' } }, 'noir id new [--force]')
    const { IdentityExistsError, Keystore, passphraseFrom } = await identity()
    const force = values.force === true
    if (Keystore.exists(ctx.home) && !force) {
      throw new IdentityExistsError(`an identity already exists in ${ctx.home} (${Keystore.publicDid(ctx.home)}); use --force to replace it`)
    }
    const passphrase = await passphraseFrom(ctx.env, true, true)
    const key = await Keystore.create(ctx.home, passphrase, undefined, { force })
    print(ctx, await view(ctx.home, key.did), `Created a new identity in ${ctx.home}`)
  },
}

export const idShow: Command = {
  path: ['id', 'show'],
  summary: 'show this node\'s DID, peer id and public key',
  usage: `Usage: noir id show [--json]

Prints the node's DID, libp2p peer id and public key (multibase). Needs no passphrase: only public data is read.`,
  async run(ctx, argv) {
    parse(argv, {}, 'noir id show')
    const { Keystore } = await identity()
    print(ctx, await view(ctx.home, Keystore.publicDid(ctx.home)))
  },
}

export const idCommands: Command[] = [idNew, idShow]
