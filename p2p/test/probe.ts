// A test-side mesh node (project p2p code, no actor system) that sends hand-made envelopes and raw bytes to
// daemons and reads every envelope that comes back, so tests can see the typed errors a sender receives.
import { NodeKey } from '../../identity/keys.ts'
import { decodeEnvelope, type Envelope } from '../../identity/envelope.ts'
import { Mesh } from '../mesh.ts'

export class Probe {
  readonly key: NodeKey
  readonly mesh: Mesh
  readonly received: Envelope[] = []
  private waiters: Array<() => void> = []

  private constructor(key: NodeKey, mesh: Mesh) {
    this.key = key
    this.mesh = mesh
    mesh.transport.onEnvelope(({ bytes }) => {
      this.received.push(decodeEnvelope(bytes).envelope)
      for (const w of this.waiters.splice(0)) w()
    })
  }

  static async start(opts: { bootstrap?: string[]; listen?: string[] } = {}): Promise<Probe> {
    const key = NodeKey.generate()
    const mesh = await Mesh.create({ key, mdns: false, natTraversal: false, pingIntervalMs: 0, listen: opts.listen ?? ['/ip4/127.0.0.1/tcp/0'], bootstrap: opts.bootstrap ?? [] })
    await mesh.start()
    return new Probe(key, mesh)
  }

  get did(): string {
    return this.key.did
  }

  /** Waits for an envelope matching `pred` (already received or arriving later). */
  async waitFor(pred: (e: Envelope) => boolean, timeoutMs = 10_000): Promise<Envelope> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const hit = this.received.find(pred)
      if (hit) return hit
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no matching envelope within ${timeoutMs} ms (got ${this.received.length}: ${this.received.map((e) => e.behavior).join(', ')})`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
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
