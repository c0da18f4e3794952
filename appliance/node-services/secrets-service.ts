// Secret delivery on a node (spec/secrets.md), both sides:
//  - as an orchestrator: the `secrets` actor answers providers' fetches (secret-relay.ts), and the local API
//    lets the node's secret broker (the gateway) follow and answer them: GET /v1/secret-requests (NDJSON),
//    POST /v1/secret-requests/:id; POST /v1/deployments/:id/restart asks every running replica to start
//    again (so it fetches its secrets anew: a rotation).
//  - as a provider: `fetch` asks the orchestrator of a contract for the secrets its workload names and opens
//    them with this node's key, in memory; the actor starts a replica again when its orchestrator asks.
import { createMachine } from 'xstate'
import { defineActor, type MessageContext } from '../../core/index.ts'
import { didOf } from '../../identity/envelope.ts'
import { openSealed } from '../../identity/sealed-box.ts'
import type { ApiRoute, JsonValue, NodeContext, NodeService } from '../daemon/service.ts'
import { ndjson } from '../daemon/service.ts'
import { InvalidRequestError } from '../daemon/errors.ts'
import type { ApplianceParts } from './appliance-parts.ts'
import { allocationIdFor } from './appliance-runtime.ts'
import type { OrchestrationService } from './orchestration.ts'
import { SecretRelay } from '../secrets/secret-relay.ts'
import { SecretRefusedError, SecretUnavailableError } from '../secrets/errors.ts'
import { SECRETS_ACTOR, SecretsBehavior, secretAad, type ProviderSecrets, type SealedSecret } from '../secrets/protocol.ts'

export interface SecretsServiceInit {
  orchestration: () => OrchestrationService
  appliance: () => ApplianceParts
}

export class SecretsService implements NodeService, ProviderSecrets {
  readonly name = 'secrets'
  readonly #orchestration: () => OrchestrationService
  readonly #appliance: () => ApplianceParts
  #ctx: NodeContext | undefined
  #relay: SecretRelay | undefined

  constructor(init: SecretsServiceInit) {
    this.#orchestration = init.orchestration
    this.#appliance = init.appliance
  }

  start(ctx: NodeContext): void {
    this.#ctx = ctx
    const orch = this.#orchestration()
    const own = ((ctx.config.orchestration ?? {}) as { secrets?: Record<string, string> }).secrets ?? {}
    const relay = (this.#relay = new SecretRelay({
      contract: async (id) => orch.contracts?.get(id, 'consumer'),
      workloadOf: (id) => orch.orchestrator?.workloadOf(id),
      own,
    }))
    ctx.system.spawn(defineActor(createMachine({ id: 'secrets' })).with({
      name: 'secrets',
      behaviors: {
        [SecretsBehavior.fetch]: {
          public: true, // anyone may ask; only the provider of a live contract of this node is answered
          deferred: true,
          event: (body: unknown, msg: MessageContext<{ secrets: SealedSecret[] }>) => {
            relay.answer(body, didOf(msg.from)).then((r) => msg.respond(r), (err: Error) => {
              ctx.log.info('secret fetch refused', { from: didOf(msg.from), error: err.name })
              msg.fail(err)
            })
            return { type: 'secret-fetch' }
          },
        },
        [SecretsBehavior.restart]: {
          public: true, // anyone may ask; only the orchestrator of the contract is obeyed
          deferred: true,
          event: (body: unknown, msg: MessageContext<{ restarted: boolean }>) => {
            this.#restartAsked(body, didOf(msg.from)).then((r) => msg.respond(r), (err: Error) => msg.fail(err))
            return { type: 'secret-restart' }
          },
        },
      },
    }), { name: SECRETS_ACTOR })
  }

  async stop(): Promise<void> {
    const ctx = this.#ctx
    if (ctx?.system.running) await ctx.system.stopActor(SECRETS_ACTOR).catch(() => undefined)
  }

  status(): JsonValue {
    return { brokers: this.#relay?.brokers ?? 0 }
  }

  // ---- provider side ----

  async fetch(o: { contractId: string; consumer: string; deploymentId: string; names: string[] }): Promise<Record<string, string>> {
    const ctx = this.#need()
    const to = await (this.#orchestration().provider?.orchestratorOf(o.consumer, o.deploymentId) ?? Promise.resolve(o.consumer)).catch(() => o.consumer)
    const answer = await ctx.system.refFor(`${to}/${SECRETS_ACTOR}`).ask<{ secrets?: unknown }>(SecretsBehavior.fetch, { contractId: o.contractId, names: o.names }, { timeoutMs: 30_000 })
    const list = Array.isArray(answer?.secrets) ? (answer.secrets as SealedSecret[]) : []
    const out: Record<string, string> = {}
    for (const name of o.names) {
      const s = list.find((x) => x && x.name === name)
      if (!s || !Number.isSafeInteger(s.version) || typeof s.box !== 'string') throw new SecretUnavailableError(`the orchestrator sent no secret ${name}`)
      // opens only for this node, this contract, this name and version (SealedBoxError otherwise)
      out[name] = Buffer.from(openSealed(ctx.key, s.box, secretAad(o.contractId, ctx.did, name, s.version))).toString('utf8')
    }
    return out
  }

  async #restartAsked(body: unknown, from: string): Promise<{ restarted: boolean }> {
    const contractId = (body as { contractId?: unknown } | null)?.contractId
    if (typeof contractId !== 'string' || !/^[A-Za-z0-9._:-]{1,200}$/.test(contractId)) throw new InvalidRequestError('a restart is { contractId }')
    const orch = this.#orchestration()
    const rec = await orch.contracts?.get(contractId, 'provider')
    const t = rec?.contract.terms
    const orchestrator = t ? await (orch.provider?.orchestratorOf(t.consumer, t.deploymentId) ?? Promise.resolve(t.consumer)).catch(() => t.consumer) : undefined
    if (!rec || !t || (from !== t.consumer && from !== orchestrator) || rec.status !== 'active') throw new SecretRefusedError(`no live contract ${contractId} of yours here`)
    return { restarted: this.#appliance().allocations.restart(allocationIdFor(contractId)) }
  }

  // ---- orchestrator side: the local API ----

  routes(): ApiRoute[] {
    const relay = this.#relay!
    return [
      { method: 'GET', path: '/v1/secret-requests', handler: (req) => ndjson(relay.follow(req.signal) as AsyncIterable<JsonValue>) },
      {
        method: 'POST', path: '/v1/secret-requests/:id',
        handler: (req) => {
          relay.settle(req.params.id!, req.body)
          return { ok: true }
        },
      },
      { method: 'POST', path: '/v1/deployments/:id/restart', handler: async (req) => (await this.#restartDeployment(req.params.id!)) as unknown as JsonValue },
    ]
  }

  /**
   * Asks the node of every running replica of a service to start it again, all at once; who did, who did not.
   * A job's runs are not restarted (that would throw their work away): each later run fetches anew.
   */
  async #restartDeployment(id: string): Promise<{ restarted: string[]; failed: { contractId: string; error: string }[] }> {
    const ctx = this.#need()
    const view = this.#orchestration().orchestrator!.status(id)
    const restarted: string[] = []
    const failed: { contractId: string; error: string }[] = []
    if (view.kind === 'job') return { restarted, failed: view.replicas.filter((r) => r.contractId !== null && r.state === 'running').map((r) => ({ contractId: r.contractId!, error: 'a job run is not restarted: its next run gets the new value' })) }
    await Promise.all(view.replicas.filter((r) => r.contractId !== null && r.node !== null && r.state === 'running').map(async (r) => {
      try {
        const a = await ctx.system.refFor(`${r.node}/${SECRETS_ACTOR}`).ask<{ restarted: boolean }>(SecretsBehavior.restart, { contractId: r.contractId }, { timeoutMs: 15_000 })
        if (a?.restarted) restarted.push(r.contractId!)
        else failed.push({ contractId: r.contractId!, error: 'not running there' })
      } catch (err) {
        failed.push({ contractId: r.contractId!, error: `${(err as Error).name}: ${(err as Error).message}` })
      }
    }))
    return { restarted, failed }
  }

  #need(): NodeContext {
    if (!this.#ctx) throw new SecretUnavailableError('the secrets service is not started')
    return this.#ctx
  }
}
