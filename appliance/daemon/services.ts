// The node services every daemon runs, in start order (stopped in reverse). To plug a service in: write it
// (e.g. appliance/node-services/<name>.ts exporting a NodeServiceFactory) and append ONE line here.
import type { NodeServiceFactory } from './service.ts'
import { nodeInfoService } from './node-actor.ts'
import { applianceService } from '../node-services/appliance-service.ts'
import { orchestrationService } from '../node-services/orchestration.ts'

export const nodeServices: NodeServiceFactory[] = [
  nodeInfoService,
  applianceService,
  orchestrationService,
]
