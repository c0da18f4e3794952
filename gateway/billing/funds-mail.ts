// The mails that tell an account's owner its funds ran short (spec/billing.md "Running out"): the deployment's
// workload name and id, the amounts, when it stops; nothing else (no account id, no key, no balance history).
import type { Mail } from '../mail/mailer.ts'
import type { FundsNotice } from './account-billing.ts'
import { nlcDecimal } from '../../ledger/units.ts'

export function fundsMail(to: string, n: FundsNotice): Mail {
  if (n.kind === 'funds-low') {
    return {
      to, subject: `NoirLedger: top up to keep ${n.workload} running`,
      text: `Your deployment ${n.workload} (${n.deploymentId}) has used most of what was held for it, and your account cannot hold more: ` +
        `it needs ${nlcDecimal(n.needed)} NLC and has ${nlcDecimal(n.available)} NLC available.\n\n` +
        `Unless funds arrive, it will be stopped at ${new Date(n.stopsAt).toISOString()}. Your wallet (GET /v1/wallet, or noir wallet) says where to deposit.\n`,
    }
  }
  return {
    to, subject: `NoirLedger: ${n.workload} was stopped for want of funds`,
    text: `Your deployment ${n.workload} (${n.deploymentId}) was stopped: your account could not pay for more of it.\n\nTop up and deploy it again to resume.\n`,
  }
}
