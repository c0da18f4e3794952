// QEMU's save and resume for a microVM (spec/migration.md, "Process-level checkpoints"): the guest is paused
// and its whole state (memory, devices, CPU) written to a file through QMP's `migrate` to an `exec:` URI
// (QEMU 7.2 has no `file:` URI); a new QEMU started with the same devices and `-incoming` reads it back and
// the guest continues where it stopped. A 9p share blocks QEMU migration, so a guest to be saved keeps its
// state on a virtio-blk disk.
import { connect, type Socket } from 'node:net'
import { VmStateError } from './errors.ts'

type QmpReply = { return?: unknown; error?: { class: string; desc: string }; event?: string }

/** A minimal QMP client: one command at a time over QEMU's monitor socket (line-delimited JSON). */
export class QmpClient {
  readonly #socket: Socket
  #buffer = ''
  #waiting: ((r: QmpReply) => void) | null = null
  #failed: Error | null = null

  private constructor(socket: Socket) {
    this.#socket = socket
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk
      let nl: number
      while ((nl = this.#buffer.indexOf('\n')) >= 0) {
        const line = this.#buffer.slice(0, nl).trim()
        this.#buffer = this.#buffer.slice(nl + 1)
        if (line === '') continue
        const msg = JSON.parse(line) as QmpReply & { QMP?: unknown }
        if (msg.event !== undefined || msg.QMP !== undefined) continue
        const w = this.#waiting
        this.#waiting = null
        w?.(msg)
      }
    })
    socket.on('error', (e) => {
      this.#failed = e
    })
  }

  /** Connects to a QMP unix socket and leaves capabilities negotiation mode. */
  static async connect(path: string): Promise<QmpClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path, () => resolve(s))
      s.once('error', reject)
    })
    const client = new QmpClient(socket)
    await client.execute('qmp_capabilities')
    return client
  }

  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.#failed !== null) throw new VmStateError(`QMP connection failed: ${this.#failed.message}`)
    let onClose: (() => void) | undefined
    const reply = await new Promise<QmpReply>((resolve, reject) => {
      this.#waiting = resolve
      onClose = () => reject(new VmStateError(`QMP closed during ${command}`))
      this.#socket.once('close', onClose)
      this.#socket.write(`${JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args })}\n`)
    }).finally(() => this.#socket.off('close', onClose!))
    if (reply.error !== undefined) throw new VmStateError(`QMP ${command}: ${reply.error.class}: ${reply.error.desc}`)
    return reply.return
  }

  close(): void {
    this.#socket.destroy()
  }
}

const shellSingleQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/** The `-incoming` arguments that make a new QEMU read a saved state file before it runs. */
export const incomingArgs = (stateFile: string): string[] => ['-incoming', `exec:cat ${shellSingleQuote(stateFile)}`]

/**
 * Pauses the guest and writes its state to `stateFile`; resolves once QEMU reports the migration completed
 * (the guest stays paused: the caller ends this QEMU). Throws VmStateError when QEMU reports failure.
 */
export async function saveVmState(qmp: QmpClient, stateFile: string, pollMs = 50): Promise<void> {
  await qmp.execute('stop')
  await qmp.execute('migrate', { uri: `exec:cat > ${shellSingleQuote(stateFile)}` })
  for (;;) {
    const info = (await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string }
    if (info.status === 'completed') return
    if (info.status === 'failed' || info.status === 'cancelled') {
      throw new VmStateError(`migration to ${stateFile} ${info.status}${info['error-desc'] ? `: ${info['error-desc']}` : ''}`)
    }
    await new Promise((r) => setTimeout(r, pollMs))
  }
}

/** Resumes a guest loaded with `-incoming`, once QEMU has read the whole state. */
export async function resumeVm(qmp: QmpClient, pollMs = 50): Promise<void> {
  for (;;) {
    const info = (await qmp.execute('query-status')) as { status?: string }
    if (info.status === 'paused' || info.status === 'postmigrate') break
    if (info.status === 'running') return
    await new Promise((r) => setTimeout(r, pollMs))
  }
  await qmp.execute('cont')
}
