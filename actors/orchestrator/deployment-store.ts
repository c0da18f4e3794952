// Deployments kept across restarts of the orchestrating node, in a KvStore (core/kv-store.ts): key `d/<id>`
// -> the DeploymentRecord. Records written before 2026-12 hold it as JSON text (encoded twice): still read.
import { decodedTwice, type KvStore } from '../../core/index.ts'
import type { DeploymentRecord, DeploymentStore } from './orchestrator.ts'

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
