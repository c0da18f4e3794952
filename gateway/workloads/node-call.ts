// Calls from the gateway to its node's local API, with the node's answers said as the gateway's typed errors:
// a node that does not answer is MeshUnavailableError (503), a typed refusal of the node is passed on as
// NodeRefusedError (its name, code and data; a 5xx of the node is a 502 here).
import { ApiCallError, NoDaemonError } from '../../appliance/daemon/errors.ts'
import { GatewayError, MeshUnavailableError, NodeRefusedError } from '../errors.ts'

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

export async function callNode<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof GatewayError) throw err
    if (err instanceof NoDaemonError) throw new MeshUnavailableError(`the gateway's node does not answer: ${err.message}`)
    if (err instanceof ApiCallError) throw new NodeRefusedError({ name: err.name, code: err.code, status: err.status, message: err.message, ...(isRecord(err.data) ? { data: err.data } : {}) })
    throw err
  }
}
