// Deployments kept across restarts of the orchestrating node, in a KvStore (core/kv-store.ts): key `d/<id>`
// -> the DeploymentRecord. Records written before 2026-12 hold it as JSON text (encoded twice): still read
// (and skipped by the orchestrator when of the older format, v1).
import { decodedTwice, type KvStore } from '../../core/index.ts'
import type { DeploymentRecord, DeploymentStore } from './checkpoints.ts'
import type { ReplicaBody, StandbyReplicaStore } from './standby.ts'

export class KvDeploymentStore implements DeploymentStore {
  readonly #records: KvStore<DeploymentRecord | string>

  constructor(kv: KvStore) {
    this.#records = kv.scope<DeploymentRecord | string>('d/')
  }

  async save(record: DeploymentRecord): Promise<void> {
    await this.#records.put(record.id, record)
  }

  async loadAll(): Promise<DeploymentRecord[]> {
    const out: DeploymentRecord[] = []
    for await (const [, v] of this.#records.entries()) out.push(decodedTwice(v)!)
    return out
  }
}

/** What a standby orchestrator received from the nodes it stands by for: key `s/<from>/<id>`. */
export class KvStandbyReplicaStore implements StandbyReplicaStore {
  readonly #records: KvStore<{ from: string; body: ReplicaBody }>

  constructor(kv: KvStore) {
    this.#records = kv.scope<{ from: string; body: ReplicaBody }>('s/')
  }

  async save(from: string, body: ReplicaBody): Promise<void> {
    await this.#records.put(`${from}/${body.record.id}`, { from, body })
  }

  async loadAll(): Promise<{ from: string; body: ReplicaBody }[]> {
    const out: { from: string; body: ReplicaBody }[] = []
    for await (const [, v] of this.#records.entries()) out.push(v)
    return out
  }
}
