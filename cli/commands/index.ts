// Every `noir` subcommand, in the order `noir --help` lists them. Add a command: write
// cli/commands/<name>.ts exporting a `Command` (or several) and list it here.
import type { Command } from '../command.ts'
import { idCommands } from './id.ts'
import { capCommands } from './cap.ts'
import { initCommand } from './init.ts'
import { nodeCommands } from './node.ts'
import { nodeContracts } from './node-contracts.ts'
import { joinCommand } from './join.ts'
import { peersCommand } from './peers.ts'
import { pingCommand } from './ping.ts'
import { actorCommands } from './actor.ts'
import { nodeApplianceCommands } from './node-info.ts'
import { deployCommand } from './deploy.ts'
import { provenanceCommand, resultsCommand } from './results.ts'
import { psCommand } from './ps.ts'
import { statusCommand } from './status.ts'
import { logsCommand } from './logs.ts'
import { stopCommand } from './stop.ts'
import { migrateCommand } from './migrate.ts'
import { bidsCommand } from './bids.ts'
import { contractsCommand } from './contracts.ts'
import { demoCommand } from './demo.ts'
import { catalogCommands } from './catalog.ts'
import { walletCommands } from './wallet.ts'
import { capacityCommands } from './capacity.ts'
import { settleCommands } from './settle.ts'
import { gatewayCommands } from './gateway.ts'
import { loginCommand, logoutCommand } from './login.ts'
import { secretsCommands } from './secrets.ts'
import { ledgerCommands } from './ledger.ts'
import { usageCommand } from './usage.ts'
import { endpointsCommand, exposeCommand } from './ingress.ts'
import { trustCommand, trustShowCommand } from './trust.ts'
import { consoleCommand } from './console.ts'
import { coreCertifyCommand, coreRevokeCommand, ownerCertifyCommand, ownerRevokeCommand } from './certify.ts'

export const commands: Command[] = [
  ...idCommands,
  ...capCommands,
  initCommand,
  ...nodeCommands,
  nodeContracts,
  joinCommand,
  peersCommand,
  pingCommand,
  ...actorCommands,
  ...nodeApplianceCommands,
  ...catalogCommands,
  deployCommand,
  resultsCommand,
  provenanceCommand,
  psCommand,
  statusCommand,
  logsCommand,
  stopCommand,
  migrateCommand,
  bidsCommand,
  contractsCommand,
  ...walletCommands,
  ...capacityCommands,
  ...settleCommands,
  ...gatewayCommands,
  loginCommand,
  logoutCommand,
  ...secretsCommands,
  usageCommand,
  exposeCommand,
  endpointsCommand,
  trustCommand,
  trustShowCommand,
  ownerCertifyCommand,
  ownerRevokeCommand,
  coreRevokeCommand,
  coreCertifyCommand,
  ...ledgerCommands,
  consoleCommand,
  demoCommand,
]
