// A test-side mesh node (project p2p code, no actor system) that sends hand-made envelopes and raw bytes to
// daemons and reads every envelope that comes back, so tests can see the typed errors a sender receives.
// It is a strict third party: a self-signed envelope counts once its signature verifies, a sealed-stream
// member once its batch seal verifies (spec/envelope.md, "Sealed streams"); anything else is counted as bad.
import { NodeKey } from '../../identity/keys.ts'
import { decodeEnvelope, decodePayload, EnvelopeVerifier, type Envelope } from '../../identity/envelope.ts'
import { KIND_MEMBER, SealedStreamReader, decodeStreamFrame, isStreamFrame } from '../../identity/sealed-stream.ts'
import { Mesh } from '../mesh.ts'
import type { Log, LogFields } from '../log.ts'

/** The probe's own mesh log and connection events, kept in memory and shown when a wait fails. */
class EventTrail implements Log {
  readonly #lines: string[] = []
  readonly #t0 = Date.now()
  add(what: string, fields?: LogFields): void {
    if (this.#lines.length < 5_000) this.#lines.push(`+${Date.now() - this.#t0}ms ${what}${fields ? ` ${JSON.stringify(fields)}` : ''}`)
  }
  /** The first and the last lines (a redial loop can write thousands in between). */
  summary(head = 120, tail = 40): string {
    const l = this.#lines
    if (l.length <= head + tail) return l.join('\n')
    return [...l.slice(0, head), `  (${l.length - head - tail} lines left out)`, ...l.slice(-tail)].join('\n')
  }
  debug = (msg: string, fields?: LogFields): void => this.add(`debug ${msg}`, fields)
  info = (msg: string, fields?: LogFields): void => this.add(`info ${msg}`, fields)
  warn = (msg: string, fields?: LogFields): void => this.add(`warn ${msg}`, fields)
  error = (msg: string, fields?: LogFields): void => this.add(`error ${msg}`, fields)
}

export class Probe {
  readonly key: NodeKey
  readonly mesh: Mesh
  readonly received: Envelope[] = []
  /** Sealed-stream members as they arrive, before (or without) their seal: shows what a node sent, not proof. */
  readonly membersSeen: Envelope[] = []
  /** Standalone (self-verifying) encodings of everything received, as a third party would keep them. */
  readonly evidence: Uint8Array[] = []
  /** Why each envelope or seal that did not verify was refused (shown when a wait fails). */
  readonly badReasons: string[] = []
  /** Frames received, of each kind (wire byte 1: 1/2 self-signed, 3 member, 4 seal). */
  readonly framesByKind: Record<number, number> = {}
  #waiters: Array<() => void> = []
  readonly #reader = new SealedStreamReader()
  readonly #trail: EventTrail

  private constructor(key: NodeKey, mesh: Mesh, trail: EventTrail) {
    this.key = key
    this.mesh = mesh
    this.#trail = trail
    const verifier = new EnvelopeVerifier()
    mesh.transport.onEnvelope(({ bytes, peerDid }) => {
      trail.add(`frame of kind ${bytes[1] ?? 0}`)
      this.framesByKind[bytes[1] ?? 0] = (this.framesByKind[bytes[1] ?? 0] ?? 0) + 1
      try {
        if (isStreamFrame(bytes)) {
          const frame = decodeStreamFrame(bytes, 1024 * 1024)
          if (frame.kind === KIND_MEMBER) this.membersSeen.push(decodePayload(frame.payload))
          const sealed = this.#reader.push(bytes, peerDid)
          if (sealed.length > 0) this.#accept(sealed.map((s) => s.envelope), sealed.map((s) => s.bytes))
        } else {
          verifier.verify(bytes)
          this.#accept([decodeEnvelope(bytes).envelope], [bytes])
        }
      } catch (err) {
        this.badReasons.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err))
      }
    })
  }

  /** Envelopes or seals that did not verify. */
  get bad(): number {
    return this.badReasons.length
  }

  #accept(envelopes: Envelope[], evidence: Uint8Array[]): void {
    this.received.push(...envelopes)
    this.evidence.push(...evidence)
    for (const w of this.#waiters.splice(0)) w()
  }

  static async start(opts: { bootstrap?: string[]; listen?: string[] } = {}): Promise<Probe> {
    const key = NodeKey.generate()
    const trail = new EventTrail()
    const mesh = await Mesh.create({ key, log: trail, mdns: false, natTraversal: false, pingIntervalMs: 0, listen: opts.listen ?? ['/ip4/127.0.0.1/tcp/0'], bootstrap: opts.bootstrap ?? [] })
    const connection = (what: string) => (e: CustomEvent<{ id: string; direction: string; remotePeer: { toString(): string } }>): void =>
      trail.add(`connection ${what}`, { id: e.detail.id, direction: e.detail.direction, peer: e.detail.remotePeer.toString() })
    mesh.host.addEventListener('connection:open', connection('open'))
    mesh.host.addEventListener('connection:close', connection('close'))
    await mesh.start()
    trail.add('started')
    return new Probe(key, mesh, trail)
  }

  get did(): string {
    return this.key.did
  }

  /**
   * Waits for an envelope matching `pred` (already received or arriving later). `explain`, when given, adds
   * the other side's view (a daemon's log, say) to the error when nothing matches in time.
   */
  async waitFor(pred: (e: Envelope) => boolean, timeoutMs = 10_000, explain?: () => Promise<string> | string): Promise<Envelope> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const hit = this.received.find(pred)
      if (hit) return hit
      const left = deadline - Date.now()
      if (left <= 0) {
        const conns = this.mesh.host.getConnections().map((c) => `${c.direction} ${c.status} [${c.streams.map((s) => `${s.protocol ?? '?'} ${s.direction} ${s.status}`).join(', ')}]`)
        const more = explain ? `\n${await Promise.resolve().then(explain).catch((err: unknown) => `(explain failed: ${String(err)})`)}` : ''
        throw new Error(`no matching envelope within ${timeoutMs} ms (got ${this.received.length}: ${this.received.map((e) => e.behavior).join(', ')}; ` +
          `frames by kind ${JSON.stringify(this.framesByKind)}; ${this.#reader.openBatches} batches unsealed; refused: ${this.badReasons.join(' | ') || 'none'}; ` +
          `connections: ${conns.join('; ') || 'none'})\nprobe events:\n${this.#trail.summary()}${more}`)
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  async stop(): Promise<void> {
    await this.mesh.stop()
  }
}
