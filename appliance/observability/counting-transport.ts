// A Transport that counts what crosses it (envelopes and bytes, each way, and failed sends) in plain numbers
// the metrics read at scrape time. Wraps the mesh's transport in the daemon; core and p2p know nothing of it.
import type { InboundHandler, SendSink, Transport } from '../../core/transport.ts'

export interface TransportCounts {
  sent: number
  sentBytes: number
  received: number
  receivedBytes: number
  sendFailures: number
}

export function countingTransport(inner: Transport): { transport: Transport; counts: TransportCounts } {
  const counts: TransportCounts = { sent: 0, sentBytes: 0, received: 0, receivedBytes: 0, sendFailures: 0 }
  // sinks are shared objects (one per sender): each gets one counting twin, not one per envelope
  const twins = new WeakMap<SendSink<unknown>, SendSink<unknown>>()
  const twin = <C>(sink: SendSink<C>): SendSink<C> => {
    let t = twins.get(sink as SendSink<unknown>) as SendSink<C> | undefined
    if (t === undefined) {
      t = { handedOff: (c) => sink.handedOff(c), failed: (c, e) => { counts.sendFailures++; sink.failed(c, e) } }
      twins.set(sink as SendSink<unknown>, t as SendSink<unknown>)
    }
    return t
  }
  const failed = (err: unknown): never => {
    counts.sendFailures++
    throw err
  }
  const transport: Transport = {
    get localDid() {
      return inner.localDid
    },
    ...(inner.authenticatesPeers !== undefined ? { authenticatesPeers: inner.authenticatesPeers } : {}),
    send(to, bytes) {
      counts.sent++
      counts.sentBytes += bytes.byteLength
      return inner.send(to, bytes).catch(failed)
    },
    ...(inner.post
      ? {
        post<C>(to: string, bytes: Uint8Array, sink: SendSink<C>, context: C): void {
          counts.sent++
          counts.sentBytes += bytes.byteLength
          inner.post!(to, bytes, twin(sink), context)
        },
      }
      : {}),
    ...(inner.disconnect ? { disconnect: (peer: string, reason: Error) => inner.disconnect!(peer, reason) } : {}),
    onEnvelope(handler: InboundHandler) {
      inner.onEnvelope((inbound) => {
        counts.received++
        counts.receivedBytes += inbound.bytes.byteLength
        handler(inbound)
      })
    },
    ...(inner.onPeerGone ? { onPeerGone: (h: (peer: string) => void) => inner.onPeerGone!(h) } : {}),
    start: () => inner.start(),
    stop: () => inner.stop(),
  }
  return { transport, counts }
}
