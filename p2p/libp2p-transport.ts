// core's Transport over libp2p: envelopes travel as frames on /noir/actor/1.0.0; the peer that sent a frame
// is the Noise-authenticated remote peer id, whose did:key is handed to the kernel as `peerDid`.
import type { PeerId } from '@libp2p/interface'
import type { InboundHandler, SendSink, Transport } from '../core/transport.ts'
import { didFromPeerId, peerIdFromDid } from '../identity/did-key.ts'
import { ActorWire } from './actor-wire.ts'
import type { NoirHost } from './host.ts'
import { UnreachableError } from './errors.ts'
import { errorFields, silentLog, type Log } from './log.ts'
import { connectToPeer } from './routing.ts'

export interface Libp2pTransportOptions {
  host: NoirHost
  /** Largest envelope accepted or sent. Default 1 MiB. */
  maxFrameBytes?: number
  /** Time allowed to find and open a route to a node. Default 10 s. */
  dialTimeoutMs?: number
  /** A frame must complete within this time once it starts arriving. Default 30 s. */
  frameTimeoutMs?: number
  log?: Log
  /** Called with a peer that broke the protocol, before it is hung up on (the mesh refuses it for a while). */
  quarantine?: (peer: PeerId) => void
}

export class Libp2pTransport implements Transport {
  readonly localDid: string
  /** Noise binds every connection to the remote peer id, which is its did:key. */
  readonly authenticatesPeers = true
  readonly wire: ActorWire
  readonly #host: NoirHost
  readonly #log: Log
  readonly #quarantine: ((peer: PeerId) => void) | undefined
  #handler: InboundHandler = () => {}
  #goneListener: ((e: CustomEvent<PeerId>) => void) | undefined
  readonly #didByPeer = new Map<string, string>()
  readonly #peerByDid = new Map<string, PeerId>()
  /** Peers being hung up on for a protocol violation: their frames are no longer delivered. */
  readonly #closing = new Set<string>()

  constructor(opts: Libp2pTransportOptions) {
    this.#host = opts.host
    this.#log = opts.log ?? silentLog
    this.#quarantine = opts.quarantine
    this.localDid = didFromPeerId(opts.host.peerId)
    this.wire = new ActorWire({
      host: opts.host,
      maxFrameBytes: opts.maxFrameBytes,
      dialTimeoutMs: opts.dialTimeoutMs,
      frameTimeoutMs: opts.frameTimeoutMs,
      log: this.#log,
      connect: (peer, signal) => connectToPeer(opts.host, peer, signal, this.#log),
      // Broken framing is not a mistake an honest peer makes: refuse it for a while and close its connection
      // now, so nothing more it sent is read (no refusal can be framed back on a stream that is not framed).
      onViolation: (peer, err) => {
        this.#quarantine?.(peer)
        this.#log.warn('peer disconnected: broken framing', { peer: peer.toString(), error: err.name })
        this.#host.hangUp(peer).catch((e: unknown) => this.#log.debug('hang-up failed', { peer: peer.toString(), ...errorFields(e) }))
      },
    })
    this.wire.onFrame((body, from) => {
      // a peer being hung up on for a violation: nothing more it sent is acted on (it still reads our refusal)
      if (this.#closing.size > 0 && this.#closing.has(from.toString())) return
      const peerDid = this.#didOf(from)
      if (peerDid === undefined) return
      this.#handler({ bytes: body, peerDid })
    })
  }

  onEnvelope(handler: InboundHandler): void {
    this.#handler = handler
  }

  onPeerGone(handler: (peerDid: string) => void): void {
    if (this.#goneListener) this.#host.removeEventListener('peer:disconnect', this.#goneListener)
    this.#goneListener = (e: CustomEvent<PeerId>) => {
      const did = this.#didOf(e.detail)
      if (did !== undefined) handler(did)
    }
    this.#host.addEventListener('peer:disconnect', this.#goneListener)
  }

  async start(): Promise<void> {
    await this.wire.start()
  }

  async stop(): Promise<void> {
    if (this.#goneListener) this.#host.removeEventListener('peer:disconnect', this.#goneListener)
    this.#goneListener = undefined
    await this.wire.stop()
  }

  async send(toNodeDid: string, bytes: Uint8Array): Promise<void> {
    return this.wire.send(this.#peerFor(toNodeDid), bytes)
  }

  post<C>(toNodeDid: string, bytes: Uint8Array, sink: SendSink<C>, context: C): void {
    let peer: PeerId
    try {
      peer = this.#peerFor(toNodeDid)
    } catch (err) {
      queueMicrotask(() => sink.failed(context, err as Error))
      return
    }
    this.wire.post(peer, bytes, sink, context)
  }

  /** The peer id of a node DID (cached). Throws UnreachableError for a DID that is not a node's, or our own. */
  #peerFor(toNodeDid: string): PeerId {
    let peer = this.#peerByDid.get(toNodeDid)
    if (!peer) {
      try {
        peer = peerIdFromDid(toNodeDid)
      } catch (err) {
        throw new UnreachableError(toNodeDid, `not a node DID (did:key): ${(err as Error).message}`)
      }
      if (this.#peerByDid.size > 10_000) this.#peerByDid.clear()
      this.#peerByDid.set(toNodeDid, peer)
    }
    if (toNodeDid === this.localDid) throw new UnreachableError(toNodeDid, 'a transport does not send to its own node')
    return peer
  }

  /**
   * Quarantines a peer that broke the protocol (the kernel found a bad signature on its session) and hangs up
   * on it once it has read what was queued for it: our actor streams with it are ended after the last frame
   * and the hang-up waits for the peer to end its side (ActorWire.finish, at most 2 s).
   */
  disconnect(peerDid: string, reason: Error): void {
    let peer: PeerId
    try {
      peer = this.#peerByDid.get(peerDid) ?? peerIdFromDid(peerDid)
    } catch {
      return
    }
    this.#log.warn('peer disconnected: protocol violation', { peer: peer.toString(), did: peerDid, ...errorFields(reason) })
    // refused at once for new connections; this one is closed once the peer has read what was queued for it
    // (the kernel's refusal and its seal), so the peer learns why
    this.#quarantine?.(peer)
    const key = peer.toString()
    this.#closing.add(key)
    const hangUp = (): void => {
      this.#host.hangUp(peer)
        .catch((err: unknown) => this.#log.debug('hang-up failed', { peer: key, ...errorFields(err) }))
        .finally(() => this.#closing.delete(key))
    }
    this.wire.finish(peer).then(hangUp, hangUp)
  }

  /** The did:key of an authenticated peer (cached); undefined for a non-Ed25519 peer (frame dropped, logged). */
  #didOf(peer: PeerId): string | undefined {
    const k = peer.toString()
    let did = this.#didByPeer.get(k)
    if (did === undefined) {
      try {
        did = didFromPeerId(peer)
      } catch (err) {
        this.#log.warn('frame from a peer without an Ed25519 identity dropped', { peer: k, ...errorFields(err) })
        return undefined
      }
      if (this.#didByPeer.size > 10_000) this.#didByPeer.clear()
      this.#didByPeer.set(k, did)
    }
    return did
  }
}
