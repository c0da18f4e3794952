// The child process of the actor executor: runs ONE SDK actor (a bundle exporting a `defineActor`
// definition) in its own ActorSystem, under Node's permission model (spec/actor-executor.md).
//   node --permission --allow-fs-read=<code dirs, state dir> --allow-fs-write=<state dir>
//        --import=<sandbox-hooks.ts> sandbox-host.ts <bundle>
// Inbound messages arrive from the node over IPC (already authorized there) and are delivered with the
// sender's address; everything the actor sends goes out over IPC through the node's own ActorSystem.
// The node's key never enters this process: this system's key is a throwaway that signs nothing.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ActorSystem, type Replier } from '../../../core/actor-system.ts'
import type { RemoteEndpoint, RemoteEndpointFactory } from '../../../core/remote-contract.ts'
import type { ActorDefinition, NormalizedBehavior } from '../../../core/sdk.ts'
import { MemorySnapshotStore, type StoredSnapshot } from '../../../core/snapshot-store.ts'
import type { Transport } from '../../../core/transport.ts'
import type { ActorRef, TerminationReason } from '../../../core/types.ts'
import { fromWireError, toWireError } from '../../../core/wire-error.ts'
import { NodeKey } from '../../../identity/keys.ts'
import { ActorBundleError, sandboxError } from './errors.ts'
import { LIFECYCLE_PREFIX, SNAPSHOT_FILE, STOPPING_BEHAVIOR, type FromSandbox, type ToSandbox } from './protocol.ts'

const ACTOR_NAME = 'workload'
/** Asks delivered from the node are timed out by the node's caller; this only bounds a lost one. */
const INBOUND_ASK_LIMIT_MS = 24 * 3600_000

const post = (m: FromSandbox): void => {
  process.send?.(m)
}
/** Sends and resolves once the message is handed to the channel (before the process exits). */
const postThen = (m: FromSandbox): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined) return resolve()
    process.send(m, undefined, {}, () => resolve())
  })

/** The node closed the channel (or died): stop as on SIGTERM once the actor runs (main sets it), else end. */
let onDisconnect = (): void => process.exit(1)

const bundle = process.argv[2]
const stateDir = process.env.NOIR_STATE_DIR ?? process.cwd()
if (bundle === undefined || process.send === undefined) {
  console.error('sandbox-host: run by the actor executor (an IPC channel and a bundle path are required)')
  process.exit(2)
}

/** The actor's own outbound path: every non-local address goes to the node over IPC. */
const ipcRemote: RemoteEndpointFactory = () => {
  const pending = new Map<string, Replier>()
  let next = 0
  process.on('message', (m: ToSandbox) => {
    if (m.t !== 'reply') return
    const r = pending.get(m.id)
    if (r === undefined) return
    pending.delete(m.id)
    if (m.ok) r.ok(m.value)
    else r.fail(fromWireError(m.error))
  })
  const endpoint: RemoteEndpoint = {
    send(to, behavior, body, _from, options, reply) {
      const id = `o${++next}`
      if (reply !== undefined) pending.set(id, reply)
      const timeoutMs = (options as { timeoutMs?: number } | undefined)?.timeoutMs
      post({ t: 'send', id, to, behavior, body, ask: reply?.expectsReply === true, ...(options?.proofs ? { proofs: [...options.proofs] } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) })
      return id
    },
    forget(id) {
      pending.delete(id)
    },
    receive() {
      // Nothing arrives over the stand-in transport: inbound messages come as `deliver` on IPC.
    },
    close(error) {
      for (const r of pending.values()) r.fail(error)
      pending.clear()
    },
  }
  return endpoint
}

/** The ActorSystem needs a transport to build a remote endpoint; this one never carries bytes. */
function ipcTransport(localDid: string): Transport {
  return {
    localDid,
    send: async () => {
      throw Object.assign(new Error('the sandbox sends through the node (IPC), not a transport'), { name: 'UnreachableError' })
    },
    onEnvelope: () => {},
    start: async () => {},
    stop: async () => {},
  }
}

/** Node's ERR_ACCESS_DENIED thrown by a behavior becomes a typed SandboxAccessDeniedError answer. */
function withSandboxErrors(def: ActorDefinition): ActorDefinition {
  const wrap = <A extends unknown[], R>(f: ((...a: A) => R) | undefined): ((...a: A) => R) | undefined =>
    f === undefined
      ? undefined
      : (...a: A): R => {
          try {
            return f(...a)
          } catch (err) {
            throw sandboxError(err)
          }
        }
  const behaviors = new Map<string, NormalizedBehavior>()
  for (const [path, b] of def.behaviors) behaviors.set(path, { ...b, parse: wrap(b.parse), event: wrap(b.event), reply: wrap(b.reply) })
  return Object.freeze({ ...def, behaviors })
}

function pickDefinition(mod: Record<string, unknown>): ActorDefinition | undefined {
  const isDef = (v: unknown): v is ActorDefinition => typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'noir.actor'
  if (isDef(mod.default)) return mod.default
  if (isDef(mod.actor)) return mod.actor
  return Object.values(mod).find(isDef)
}

function writeSnapshot(record: StoredSnapshot): void {
  const file = join(stateDir, SNAPSHOT_FILE)
  writeFileSync(`${file}.tmp`, JSON.stringify(record))
  renameSync(`${file}.tmp`, file)
}

function exitCodeOf(reason: TerminationReason): number {
  if (reason.kind === 'done') {
    const out = reason.output as { exitCode?: unknown } | undefined
    return typeof out?.exitCode === 'number' && Number.isInteger(out.exitCode) ? out.exitCode & 0xff : 0
  }
  return reason.kind === 'crashed' ? 1 : 0
}

async function main(): Promise<void> {
  // 1. Tell the node our pid and wait: it moves us into the workload's cgroup before any bundle code runs.
  const go = await new Promise<Extract<ToSandbox, { t: 'go' }>>((resolve) => {
    const on = (m: ToSandbox): void => {
      if (m.t !== 'go') return
      process.off('message', on)
      resolve(m)
    }
    process.on('message', on)
    post({ t: 'hello', pid: process.pid })
  })

  // 2. Load the bundle.
  const path = isAbsolute(bundle!) ? bundle! : join(process.cwd(), bundle!)
  let mod: Record<string, unknown>
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>
  } catch (err) {
    throw sandboxError(err)
  }
  const found = pickDefinition(mod)
  if (found === undefined) throw new ActorBundleError(path, 'it exports no actor definition (export default defineActor(machine).with({...}))')
  const def = withSandboxErrors(found)
  const key = NodeKey.generate()
  const store = new MemorySnapshotStore()
  const system = new ActorSystem({ key, transport: ipcTransport(key.did), remote: ipcRemote, snapshots: store, localPolicy: 'trusted' })
  await system.start()

  // 2b. A warm start (a migration's handover): the bundle is loaded and the system up; the actor starts
  // only once the node says `begin`, by then with the old replica's snapshot in the state directory.
  let handed: StoredSnapshot | undefined = go.snapshot
  if (go.hold === true) {
    const begin = await new Promise<Extract<ToSandbox, { t: 'begin' }>>((resolve) => {
      const on = (m: ToSandbox): void => {
        if (m.t !== 'begin') return
        process.off('message', on)
        resolve(m)
      }
      process.on('message', on)
      post({ t: 'loaded' })
    })
    handed = begin.snapshot
    if (begin.address !== undefined) process.env.NOIR_ACTOR_ADDRESS = begin.address
  }

  // 3. Host it, from its snapshot when there is one (the state dir's, or the one the node handed over).
  const file = join(stateDir, SNAPSHOT_FILE)
  let record: StoredSnapshot | undefined = handed
  if (record === undefined && existsSync(file)) record = JSON.parse(readFileSync(file, 'utf8')) as StoredSnapshot
  const input = process.env.NOIR_ACTOR_INPUT !== undefined ? (JSON.parse(process.env.NOIR_ACTOR_INPUT) as unknown) : undefined
  let ref: ActorRef
  if (record !== undefined) {
    await store.save(ACTOR_NAME, record)
    ref = await system.restore(def, { name: ACTOR_NAME, input })
  } else {
    ref = system.spawn(def, { name: ACTOR_NAME, input })
  }

  let stopping = false
  system.watch(ref, (reason) => {
    if (stopping) return
    if (reason.kind === 'done' || reason.kind === 'crashed') {
      const code = exitCodeOf(reason)
      if (reason.kind === 'crashed') console.error(`actor crashed: ${reason.error.name}: ${reason.error.message}`)
      const ended = postThen({ t: 'ended', kind: reason.kind, exitCode: code, ...(reason.kind === 'crashed' ? { error: toWireError(sandboxError(reason.error)) } : {}) })
      void Promise.allSettled([ended, system.stop()]).then(() => process.exit(code))
    }
  })

  const stop = async (): Promise<void> => {
    if (stopping) return
    stopping = true
    if (def.behaviors.has(STOPPING_BEHAVIOR)) {
      // The actor's chance to finish up; it answers when done (no time limit here: the node's grace period is).
      await system.ask(ref, STOPPING_BEHAVIOR, undefined, { timeoutMs: INBOUND_ASK_LIMIT_MS }).catch((err: unknown) => {
        console.error(`stopping: ${(err as Error).message}`)
      })
    }
    try {
      const saved = await system.saveSnapshot(ref)
      writeSnapshot(saved)
      await postThen({ t: 'snapshot', record: saved })
    } catch (err) {
      console.error(`could not save the snapshot: ${(err as Error).message}`)
    }
    await system.stop()
    process.exit(0)
  }
  process.on('SIGTERM', () => void stop())
  onDisconnect = () => void stop()

  process.on('message', (m: ToSandbox) => {
    switch (m.t) {
      case 'deliver': {
        if (m.behavior.startsWith(LIFECYCLE_PREFIX)) {
          if (m.ask) post({ t: 'answer', id: m.id, ok: false, error: { name: 'UnknownBehaviorError', code: 'ERR_UNKNOWN_BEHAVIOR', message: `${m.behavior} is not routed from the node` } })
          return
        }
        if (!m.ask) {
          try {
            system.tell(ref, m.behavior, m.body, { from: m.from })
          } catch (err) {
            console.error(`refused ${m.behavior} from ${m.from}: ${(err as Error).message}`)
          }
          return
        }
        system.ask(ref, m.behavior, m.body, { from: m.from, timeoutMs: INBOUND_ASK_LIMIT_MS }).then(
          (value) => post({ t: 'answer', id: m.id, ok: true, value }),
          (err: unknown) => post({ t: 'answer', id: m.id, ok: false, error: toWireError(sandboxError(err)) }),
        )
        return
      }
      case 'checkpoint':
        system.saveSnapshot(ref).then(
          (saved) => {
            writeSnapshot(saved)
            post({ t: 'checkpointed', id: m.id, ok: true, record: saved })
          },
          (err: unknown) => post({ t: 'checkpointed', id: m.id, ok: false, error: toWireError(sandboxError(err)) }),
        )
        return
      case 'stop':
        void stop()
        return
      default:
        return
    }
  })

  const behaviors = [...def.behaviors.values()]
    .filter((b) => !b.path.startsWith(LIFECYCLE_PREFIX))
    .map((b) => ({ path: b.path, ability: b.ability, public: b.public }))
  post({ t: 'ready', behaviors, restored: record !== undefined })
}

function fatal(err: unknown): void {
  const e = sandboxError(err) as Error
  console.error(`sandbox: ${e.name}: ${e.message}`)
  void postThen({ t: 'ended', kind: 'crashed', exitCode: 1, error: toWireError(e) }).then(() => process.exit(1))
}
process.on('uncaughtException', fatal)
process.on('disconnect', () => onDisconnect())
main().catch(fatal)
