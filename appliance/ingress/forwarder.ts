// The provider's side of the ingress (spec/ingress.md "What the provider checks"): it answers `/noir/ingress/1`
// streams by forwarding the bytes to a workload's port on its own loopback, and only after every check passed:
// an active contract with that id on this node, for that deployment, whose workload declares that tcp port
// and makes it public (or an exposure grant signed by the deployment's orchestrator opens it), a replica
// whose health check passes, and a published loopback port. A port with an access policy also needs the key
// or token the client presented, checked here again (a peer may open a stream without any ingress). Every refusal is answered with a typed error
// before the stream is closed. Nothing else on the provider's host is reachable this way.
import { connect, type Socket } from 'node:net'
import type { Connection, Stream } from '@libp2p/interface'
import type { StoredContract } from '../../actors/contracts/store.ts'
import { errorFields, type Log } from '../../p2p/log.ts'
import { BackendUnreachableError, ContractNotServingError, PortNotExposedError, ReplicaNotReadyError } from './errors.ts'
import { checkGrant } from './grant.ts'
import { AccessChecker } from './access.ts'
import { OPEN_TIMEOUT_MS, encodeFrame, parseOpenRequest, readFrame, refusal, type OpenRequest } from './protocol.ts'
import { splice } from './splice.ts'

/** How long the provider waits for the workload's port to accept. */
const BACKEND_CONNECT_MS = 5000

export interface Readiness {
  ready: boolean
  why?: string
}

export interface ForwarderDeps {
  /** This node's record of a contract it provides. */
  contract(id: string): Promise<StoredContract | undefined>
  /** Who orchestrates a consumer's deployment now (the consumer, or its standby after a handover). */
  orchestratorOf(consumer: string, deploymentId: string): Promise<string>
  /** The loopback host port the contract's instance publishes `port` on, if it runs. */
  hostPort(contractId: string, port: number): number | undefined
  readiness(contractId: string): Readiness
  log: Log
}

export interface ForwarderStats {
  opened: number
  refused: Record<string, number>
  active: number
}

export class IngressForwarder {
  readonly #d: ForwarderDeps
  readonly stats: ForwarderStats = { opened: 0, refused: {}, active: 0 }
  readonly #access = new AccessChecker()

  constructor(deps: ForwarderDeps) {
    this.#d = deps
  }

  /** The libp2p protocol handler. */
  handle(stream: Stream, connection: Connection): void {
    void this.#serve(stream, connection.remotePeer.toString())
  }

  async #serve(stream: Stream, peer: string): Promise<void> {
    let backend: Socket
    let req: OpenRequest | undefined
    try {
      req = parseOpenRequest(await readFrame(stream, OPEN_TIMEOUT_MS))
      const port = await this.#check(req)
      backend = await connectLoopback(port, req)
    } catch (err) {
      const name = err instanceof Error ? err.name : 'Error'
      this.stats.refused[name] = (this.stats.refused[name] ?? 0) + 1
      this.#d.log.info('ingress stream refused', { peer, ...(req ? { deploymentId: req.deploymentId, contractId: req.contractId, port: req.port } : {}), ...errorFields(err) })
      try {
        stream.send(encodeFrame(refusal(err)))
        await stream.close({ signal: AbortSignal.timeout(2000) })
      } catch {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
      }
      return
    }
    this.stats.opened++
    this.stats.active++
    try {
      stream.send(encodeFrame({ ok: true }))
      await splice(backend, stream)
    } finally {
      this.stats.active--
    }
  }

  /** Every check of the open request; returns the loopback port to connect to. */
  async #check(req: OpenRequest): Promise<number> {
    const stored = await this.#d.contract(req.contractId)
    if (!stored) throw new ContractNotServingError(req.contractId, 'this node provides no such contract')
    const terms = stored.contract.terms
    if (terms.deploymentId !== req.deploymentId) throw new ContractNotServingError(req.contractId, 'it belongs to another deployment')
    if (stored.status !== 'active') throw new ContractNotServingError(req.contractId, `it is ${stored.status}`)
    const declared = stored.workload?.ports.find((p) => p.port === req.port && p.protocol === 'tcp')
    if (!declared) throw new PortNotExposedError(req.deploymentId, req.port, 'the workload declares no such tcp port')
    if (declared.public !== true) {
      if (req.grant === undefined) throw new PortNotExposedError(req.deploymentId, req.port, 'the workload keeps it private')
      const now = await this.#d.orchestratorOf(terms.consumer, terms.deploymentId).catch(() => terms.consumer)
      checkGrant(req.grant, { deploymentId: req.deploymentId, port: req.port, orchestrators: [...new Set([terms.consumer, now])] })
    }
    // an ingress checked it already; a peer that opens a stream to this node without one must not get past it
    if (declared.access) await this.#access.check(declared.access, req.bearer !== undefined ? [`Bearer ${req.bearer}`] : [], req.deploymentId, req.port)
    const r = this.#d.readiness(req.contractId)
    if (!r.ready) throw new ReplicaNotReadyError(req.contractId, r.why ?? 'its health check does not pass')
    const hostPort = this.#d.hostPort(req.contractId, req.port)
    if (hostPort === undefined) throw new ReplicaNotReadyError(req.contractId, 'its instance publishes no port now')
    return hostPort
  }
}

function connectLoopback(hostPort: number, req: OpenRequest): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: hostPort, noDelay: true, allowHalfOpen: true })
    s.pause()
    const timer = setTimeout(() => {
      s.destroy()
      reject(new BackendUnreachableError(req.contractId, req.port, `no answer within ${BACKEND_CONNECT_MS} ms`))
    }, BACKEND_CONNECT_MS)
    s.once('connect', () => {
      clearTimeout(timer)
      resolve(s)
    })
    s.once('error', (err) => {
      clearTimeout(timer)
      reject(new BackendUnreachableError(req.contractId, req.port, (err as NodeJS.ErrnoException).code ?? err.message))
    })
  })
}
