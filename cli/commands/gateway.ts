// `noir gateway start`: the customer-facing gateway (issue 19; spec/auth.md, spec/gateway.md): accounts with
// email verification, password and TOTP, sessions, DID wallets and API keys over HTTPS, and the customers'
// workloads run through a node daemon it drives; its state in NOIR_HOME/gateway/ (node:sqlite), or in a
// PostgreSQL that several gateways share (--database).
import { mkdirSync, readFileSync } from 'node:fs'
import { billingConfig, type BillingConfig } from '../../gateway/billing/billing-config.ts'
import { join, resolve } from 'node:path'
import { openGateway } from '../../gateway/gateway.ts'
import { gatewayCertificate } from '../../gateway/http/tls.ts'
import { parseCommandArgs, printLine, UsageError, type Command } from '../command.ts'
import { NodeMetrics } from '../../appliance/observability/node-metrics.ts'
import { MetricsServer } from '../../appliance/observability/metrics-server.ts'
import { metricsConfig } from '../../appliance/observability/config.ts'
import { silentLog } from '../../p2p/log.ts'

const hostPort = (v: string, what: string): { host: string; port: number } => {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(v)
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${what} is HOST:PORT, got ${JSON.stringify(v)}`)
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) }
}

/** The URL without its password, for printing. */
function redactedUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return 'postgres://(unparsable)'
  }
}

export const gatewayStartCommand: Command = {
  path: ['gateway', 'start'],
  summary: 'run the customer gateway (accounts, email verification, TOTP, sessions) in the foreground',
  usage: `Usage: noir gateway start --smtp HOST:PORT --from ADDRESS --public-url URL [--node HOME] [--listen HOST:PORT] [--origin URL]... [--cert FILE --key FILE] [--metrics IP:PORT] [--database postgres://USER@HOST:PORT/DB] [--billing FILE]

Serves the gateway's API on --listen (default 127.0.0.1:8480): auth (spec/auth.md: /v1/auth/signup, /verify,
/login, /logout, /totp, /totp/confirm, /reset, /reset/confirm, /sessions, /v1/account), API keys (/v1/keys)
and, with --node HOME (a running node daemon's home, which the gateway drives as its customers'
orchestrator), workloads (/v1/workloads, spec/gateway.md). Verification and reset links go through the SMTP
server --smtp from --from, pointing at --public-url. --origin names a web
origin (the dashboard's) allowed to change state; requests with any other Origin are refused. HTTPS only:
the certificate in --cert/--key, else a self-signed one generated into NOIR_HOME/gateway/tls.crt (its SHA-256
fingerprint is printed, for clients to pin). State: NOIR_HOME/gateway/gateway.db (node:sqlite), or with
--database (or the environment variable NOIR_GATEWAY_DATABASE) a PostgreSQL that several gateways share: give
each the same NOIR_HOME/gateway/secret.key (the key that seals TOTP secrets, wallets and secrets at rest; a
gateway with another key refuses to start) and put the password in PGPASSWORD or in NOIR_GATEWAY_DATABASE, not
on the command line. --billing FILE turns on per-account billing (spec/billing.md: holds at deploy
admission, usage charged to accounts, invoices, top-ups from a chain's Settlement contract). --metrics serves Prometheus
metrics (requests by route and status; spec/observability.md) at http://IP:PORT/metrics, a loopback address
only. Stops on Ctrl-C.`,
  async run(ctx, argv) {
    const { values } = parseCommandArgs(argv, { smtp: { type: 'string' }, from: { type: 'string' }, 'public-url': { type: 'string' }, node: { type: 'string' }, listen: { type: 'string' }, origin: { type: 'string', multiple: true }, cert: { type: 'string' }, key: { type: 'string' }, metrics: { type: 'string' }, database: { type: 'string' }, billing: { type: 'string' } }, { min: 0, max: 0, usage: 'usage: noir gateway start --smtp HOST:PORT --from ADDRESS --public-url URL [--node HOME] [--listen HOST:PORT] [--metrics IP:PORT]' })
    if (typeof values.smtp !== 'string' || typeof values.from !== 'string' || typeof values['public-url'] !== 'string') throw new UsageError('--smtp, --from and --public-url are required')
    if (!URL.canParse(values['public-url'])) throw new UsageError('--public-url must be a URL')
    const smtp = hostPort(values.smtp, '--smtp')
    const listen = hostPort(typeof values.listen === 'string' ? values.listen : '127.0.0.1:8480', '--listen')
    // checked before anything is written or opened
    let metricsAt: { host: string; port: number } | undefined
    if (typeof values.metrics === 'string') {
      try {
        metricsAt = metricsConfig({ listen: values.metrics })
      } catch (err) {
        throw new UsageError(`--metrics: ${(err as Error).message.replace(/^config\.json: 'metrics\.listen':? ?/, '')}`)
      }
    }
    const databaseUrl = typeof values.database === 'string' ? values.database : ctx.env.NOIR_GATEWAY_DATABASE
    if (databaseUrl !== undefined && !/^postgres(ql)?:\/\/./.test(databaseUrl)) throw new UsageError('--database is a postgres:// URL')
    let billing: BillingConfig | undefined
    if (typeof values.billing === 'string') {
      try {
        billing = billingConfig(JSON.parse(readFileSync(values.billing, 'utf8')))
      } catch (err) {
        throw new UsageError(`--billing ${values.billing}: ${(err as Error).message}`)
      }
    }
    const dir = join(ctx.home, 'gateway')
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const tls = await gatewayCertificate({ dir, host: listen.host, ...(typeof values.cert === 'string' ? { certFile: values.cert } : {}), ...(typeof values.key === 'string' ? { keyFile: values.key } : {}) })
    let scrape: MetricsServer | undefined
    let metrics: NodeMetrics | undefined
    if (metricsAt) {
      metrics = new NodeMetrics('gateway')
      scrape = new MetricsServer(metrics, silentLog)
      metrics.url = await scrape.listen(metricsAt)
    }
    const m = metrics
    const gw = await openGateway({
      dir, smtp: { ...smtp, from: values.from }, publicUrl: values['public-url'], allowedOrigins: (values.origin as string[] | undefined) ?? [],
      https: { key: tls.key, cert: tls.cert }, ...(typeof values.node === 'string' ? { nodeHome: resolve(values.node) } : {}),
      ...(databaseUrl !== undefined ? { databaseUrl } : {}),
      ...(billing ? { billing } : {}),
      ...(m ? { onRequest: (method: string, route: string, status: number, ms: number) => m.apiRequest(method, route, status, ms) } : {}),
    })
    const resumed = await gw.resume()
    if (resumed > 0) printLine(ctx, `finished ${resumed} create(s) interrupted before the last stop`)
    const at = await gw.app.listen({ host: listen.host, port: listen.port })
    printLine(ctx, `gateway listening on ${at} (state in ${databaseUrl !== undefined ? `PostgreSQL ${redactedUrl(databaseUrl)}, keys in ${dir}` : dir})`)
    if (metrics) printLine(ctx, `metrics on ${metrics.url}`)
    if (gw.billing) printLine(ctx, `billing on${gw.deposits ? `: deposits to ${gw.deposits.contract}` : ' (no chain: no top-ups)'}`)
    printLine(ctx, `gateway DID ${(await gw.wallets.gatewayKey()).did} (the audience of its API keys)${typeof values.node === 'string' ? `; workloads run through the node at ${resolve(values.node)}` : '; no --node: workload routes answer MeshUnavailableError'}`)
    printLine(ctx, `certificate${tls.generated ? ' (self-signed, generated now)' : ''} SHA-256 fingerprint ${tls.fingerprint}`)
    await new Promise<void>((resolve) => (ctx.signal.aborted ? resolve() : ctx.signal.addEventListener('abort', () => resolve(), { once: true })))
    await gw.close()
    await scrape?.close()
    printLine(ctx, 'gateway stopped')
  },
}

export const gatewayCommands: Command[] = [gatewayStartCommand]
