// One gateway, composed (spec/gateway.md): its state in `dir` (the sealing key `secret.key`; the database
// `gateway.db`, node:sqlite, unless `databaseUrl` names a PostgreSQL that several gateways share), mail through SMTP, accounts and sessions, wallets and API keys, and — when it has a node to
// drive — its customers' workloads. `noir gateway start` and the tests build it here, the same way.
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { ApiClient } from '../appliance/daemon/api-client.ts'
import { AuthService, type AuthTimes } from './auth/auth-service.ts'
import { Sealer } from './auth/sealed.ts'
import { gatewayApp } from './http/app.ts'
import { ApiKeys } from './keys/api-keys.ts'
import { Mailer, type SmtpConfig } from './mail/mailer.ts'
import { openGatewayDatabase } from './store/database.ts'
import { GatewayDatabaseError } from './errors.ts'
import { GatewayStore } from './store/gateway-store.ts'
import { TenantStore } from './store/tenant-store.ts'
import { AccountWallets } from './wallets/account-wallets.ts'
import { TenantWorkloads } from './workloads/tenant-workloads.ts'
import { AccountSecrets } from './secrets/account-secrets.ts'
import { SecretBroker } from './secrets/secret-broker.ts'
import { SecretStore } from './secrets/secret-store.ts'
import { DidBinding } from './wallets/did-binding.ts'
import { AccountBilling } from './billing/account-billing.ts'
import { fundsMail } from './billing/funds-mail.ts'
import { BillingStore } from './billing/billing-store.ts'
import { GatewayDeposits, type ChainDeposits } from './billing/deposits.ts'
import { DEFAULT_HOLD_POLICY, type HoldPolicy } from './billing/hold-size.ts'
import { CapacityReservations } from './capacity/capacity-reservations.ts'
import { CapacityStore } from './capacity/capacity-store.ts'

export interface GatewayInit {
  /** The gateway's state folder (0700). */
  dir: string
  /**
   * A postgres:// URL: accounts, sessions, keys, secrets and deployments live there, shared by every gateway
   * given the same URL (each with the same `secret.key` in its dir). None: the node:sqlite file in `dir`.
   */
  databaseUrl?: string
  smtp: SmtpConfig
  publicUrl: string
  allowedOrigins?: string[]
  https?: { key: string; cert: string }
  /** The home of the node daemon whose deployments this gateway drives (its api.json); none: no workloads. */
  nodeHome?: string
  times?: Partial<AuthTimes>
  now?: () => number
  /**
   * Per-account billing (spec/billing.md): holds at admission, the node's accepted usage charged to the
   * owning account, invoices; top-ups from a chain's Settlement contract. Absent: no books, no billing routes.
   */
  billing?: { chain?: ChainDeposits; policy?: Partial<HoldPolicy>; meterMs?: number; releaseGraceMs?: number; fundsGraceMs?: number }
  /** Told of every answered request (the gateway's metrics, spec/observability.md). */
  onRequest?: (method: string, route: string, status: number, ms: number) => void
}

export interface Gateway {
  app: FastifyInstance
  secrets: AccountSecrets
  store: GatewayStore
  tenants: TenantStore
  wallets: AccountWallets
  /** The books, when billing is on. */
  billing?: AccountBilling
  /** Capacity requests (spec/capacity.md): with billing, since a reservation is paid for up front. */
  capacity?: CapacityReservations
  deposits?: GatewayDeposits
  /** Finishes creates a crash interrupted; the count. */
  resume(): Promise<number>
  close(): Promise<void>
}

export async function openGateway(o: GatewayInit): Promise<Gateway> {
  const now = o.now ?? Date.now
  const db = await openGatewayDatabase({ ...(o.databaseUrl !== undefined ? { url: o.databaseUrl } : {}), sqlitePath: join(o.dir, 'gateway.db') })
  const store = await GatewayStore.open(db)
  const tenants = await TenantStore.open(db)
  const secretStore = await SecretStore.open(db)
  const mailer = new Mailer(o.smtp)
  const sealer = Sealer.fromFile(join(o.dir, 'secret.key'))
  const wallets = new AccountWallets({ store: tenants, sealer, now })
  try {
    // the gateway's identity is sealed under the key of the first gateway on this database: another key
    // would answer every sealed TOTP secret, wallet and secret with an error, so it does not start at all
    await wallets.gatewayKey()
  } catch (err) {
    await db.close()
    if ((err as Error).name === 'SealError') throw new GatewayDatabaseError(`this gateway's ${join(o.dir, 'secret.key')} is not the key the database was made with: every gateway on one database needs the same secret.key`)
    throw err
  }
  const keys = new ApiKeys({ store: tenants, wallets, now })
  const didBinding = new DidBinding({ wallets, now })
  const node = o.nodeHome !== undefined ? ApiClient.forHome(o.nodeHome) : undefined
  const secrets = new AccountSecrets({
    store: secretStore, sealer, now,
    ...(node ? { restart: (id: string) => node.post<{ restarted: string[]; failed: { contractId: string; error: string }[] }>(`/v1/deployments/${encodeURIComponent(id)}/restart`) } : {}),
  })
  // the node's secret requests are answered by this gateway (spec/secrets.md "Delivery")
  const broker = node ? new SecretBroker({ node, secrets }) : undefined
  broker?.start()
  const books = o.billing ? await BillingStore.open(db) : undefined
  const deposits = books && o.billing?.chain ? new GatewayDeposits({ store: books, chain: o.billing.chain, now }) : undefined
  const billing = books
    ? new AccountBilling({
      store: books, wallets, ...(node ? { node } : {}), now, policy: { ...DEFAULT_HOLD_POLICY, ...o.billing!.policy },
      deposit: deposits ? { chain: await deposits.chain().catch(() => 'evm'), contract: deposits.contract } : null,
      ...(o.billing!.meterMs !== undefined ? { meterMs: o.billing!.meterMs } : {}),
      ...(o.billing!.releaseGraceMs !== undefined ? { releaseGraceMs: o.billing!.releaseGraceMs } : {}),
      ...(o.billing!.fundsGraceMs !== undefined ? { fundsGraceMs: o.billing!.fundsGraceMs } : {}),
      notify: async (accountId, n) => {
        const to = (await store.accountById(accountId))?.email
        if (to) await mailer.send(fundsMail(to, n))
      },
    })
    : undefined
  const capacity = books
    ? new CapacityReservations({ store: await CapacityStore.open(db), books, ...(node ? { node } : {}), now, ...(o.billing!.meterMs !== undefined ? { sweepMs: o.billing!.meterMs } : {}) })
    : undefined
  const workloads = new TenantWorkloads({
    store: tenants, ...(node ? { node } : {}), now, admit: (accountId, w) => secrets.admit(accountId, w.secrets.map((s) => s.name)),
    ...(billing ? { billing } : {}), ...(capacity ? { capacity } : {}),
  })
  billing?.start()
  capacity?.start()
  deposits?.start()
  const auth = new AuthService({ store, mailer, sealer, publicUrl: o.publicUrl, now, ...(o.times ? { times: o.times } : {}) })
  const app = gatewayApp({ auth, allowedOrigins: o.allowedOrigins ?? [], ...(o.https ? { https: o.https } : {}), tenants: { keys, workloads, secrets, didBinding, ...(billing ? { billing } : {}), ...(capacity ? { capacity } : {}) }, ...(o.onRequest ? { onRequest: o.onRequest } : {}) })
  return {
    app, store, tenants, wallets, secrets, ...(billing ? { billing } : {}), ...(capacity ? { capacity } : {}), ...(deposits ? { deposits } : {}),
    resume: () => (node ? workloads.resume() : Promise.resolve(0)),
    async close() {
      await app.close()
      await billing?.close()
      await capacity?.close()
      await deposits?.close()
      await broker?.close()
      mailer.close()
      await store.close()
    },
  }
}
