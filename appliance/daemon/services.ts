// The node services every daemon runs, in start order (stopped in reverse), composed here: a service gets
// from the services before it exactly what it uses, passed explicitly. To plug a service in: write it (e.g.
// appliance/node-services/<name>.ts exporting its class) and add ONE line here.
import type { NodeService } from './service.ts'
import { NodeInfoService } from './node-actor.ts'
import { ApplianceService } from '../node-services/appliance-service.ts'
import { OrchestrationService } from '../node-services/orchestration.ts'
import { LedgerService } from '../node-services/ledger-service.ts'
import { SettlementService } from '../node-services/settlement-service.ts'
import { TrustService } from '../node-services/trust-service.ts'
import { CertRevocationService } from '../node-services/cert-revocation-service.ts'
import { ArtifactService } from '../node-services/artifact-service.ts'
import { IngressService } from '../node-services/ingress-service.ts'
import { SecretsService } from '../node-services/secrets-service.ts'
import { MetricsService } from '../observability/metrics-service.ts'

/** Fresh instances for each daemon (tests run several per process). */
export function nodeServices(): NodeService[] {
  const appliance = new ApplianceService()
  const ledger = new LedgerService()
  const artifacts = new ArtifactService()
  // trust before orchestration (placement reads it from its first bid round); it reads the orchestrator lazily
  const trust: TrustService = new TrustService({ orchestration: () => orchestration })
  const certRevocations = new CertRevocationService()
  const secrets: SecretsService = new SecretsService({ orchestration: () => orchestration, appliance: () => appliance.parts })
  const orchestration: OrchestrationService = new OrchestrationService({ appliance: () => appliance.parts, ledger: () => ledger.ledger, trust: () => trust, artifacts: () => artifacts, secrets: () => secrets, certRevocations: () => certRevocations })
  return [
    new NodeInfoService(),
    ledger,
    appliance,
    trust,
    certRevocations,
    artifacts,
    orchestration,
    secrets,
    new SettlementService({ ledger: () => ledger.ledger }),
    new IngressService({ appliance: () => appliance.parts, orchestration: () => orchestration }),
    new MetricsService({ appliance: () => appliance.parts, ledger: () => ledger.ledger, orchestrator: () => orchestration.orchestrator }),
  ]
}
