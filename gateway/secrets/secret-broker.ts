// The gateway as its node's secret broker (spec/secrets.md "Delivery"): it follows the node's secret
// requests (GET /v1/secret-requests on the node's local API) and answers each with the secrets sealed to the
// requesting provider (AccountSecrets.answer), so the node relays ciphertext only. Reconnects while open.
import type { ApiClient } from '../../appliance/daemon/api-client.ts'
import type { SecretAnswer, SecretRequest } from '../../appliance/secrets/protocol.ts'
import type { AccountSecrets } from './account-secrets.ts'

export class SecretBroker {
  readonly #node: Pick<ApiClient, 'stream' | 'post'>
  readonly #secrets: AccountSecrets
  readonly #abort = new AbortController()
  readonly #retryMs: number
  #loop: Promise<void> | undefined
  /** Requests answered so far (status, tests). */
  answered = 0

  constructor(o: { node: Pick<ApiClient, 'stream' | 'post'>; secrets: AccountSecrets; retryMs?: number }) {
    this.#node = o.node
    this.#secrets = o.secrets
    this.#retryMs = o.retryMs ?? 500
  }

  start(): void {
    this.#loop ??= this.#run()
  }

  async close(): Promise<void> {
    this.#abort.abort()
    await this.#loop
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal
    while (!signal.aborted) {
      try {
        for await (const r of this.#node.stream<SecretRequest>('/v1/secret-requests', { signal })) {
          let a: SecretAnswer
          try {
            a = await this.#secrets.answer(r)
          } catch (err) {
            // never the value: only the failure's class and message (which name no value)
            a = { error: { name: 'SecretUnavailableError', message: `the gateway could not seal: ${(err as Error).name}` } }
          }
          await this.#node.post(`/v1/secret-requests/${encodeURIComponent(r.id)}`, a).catch(() => undefined)
          this.answered++
        }
      } catch {
        // the node restarted or is not up yet: follow again
      }
      if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, this.#retryMs).unref())
    }
  }
}
