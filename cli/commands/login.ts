// `noir login --gateway URL` and `noir logout` (spec/cli.md "Against a gateway"): after a login, deploy, ps,
// status, logs and stop go to the gateway as the account; logout returns them to the local daemon. Secrets
// never go on the command line (where `ps` shows them): the password comes from $NOIR_PASSWORD, an API key
// from $NOIR_API_KEY.
import { readFileSync } from 'node:fs'
import { clientOf, forgetLogin, readLogin, saveLogin, type GatewayLogin } from '../gateway-login.ts'
import { parseCommandArgs, printJson, printLine, UsageError, type Command } from '../command.ts'

export const loginCommand: Command = {
  path: ['login'],
  summary: 'log in to a gateway: deploy, ps, status, logs and stop then go there',
  usage: `Usage: noir login --gateway URL [--ca FILE] (--email EMAIL [--totp CODE] | --api-key)

Logs in to the gateway at URL (https://...) and keeps the login in NOIR_HOME/gateway-login.json (0600).
  --email EMAIL  log in as this account; the password is read from $NOIR_PASSWORD; --totp CODE when the
                 account has TOTP (a recovery code works too)
  --api-key      use the API key in $NOIR_API_KEY (made with the gateway's /v1/keys; its scopes apply)
  --ca FILE      trust this certificate (PEM; the gateway's generated self-signed one, whose fingerprint
                 \`noir gateway start\` prints) instead of the system's CAs
Then \`noir deploy\`, \`ps\`, \`status\`, \`logs\` and \`stop\` act on the account's deployments at the gateway,
until \`noir logout\`.`,
  async run(ctx, argv) {
    const { values } = parseCommandArgs(argv, { gateway: { type: 'string' }, ca: { type: 'string' }, email: { type: 'string' }, totp: { type: 'string' }, 'api-key': { type: 'boolean' } }, { min: 0, max: 0, usage: 'noir login --gateway URL [--ca FILE] (--email EMAIL [--totp CODE] | --api-key)' })
    const url = values.gateway
    if (typeof url !== 'string' || !URL.canParse(url)) throw new UsageError('--gateway URL is required (https://host:port)')
    const u = new URL(url)
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && (u.hostname === '127.0.0.1' || u.hostname === 'localhost'))) throw new UsageError('the gateway URL is https:// (plain http only on loopback)')
    if ((typeof values.email === 'string') === (values['api-key'] === true)) throw new UsageError('give --email EMAIL or --api-key (one of them)')
    let ca: string | undefined
    if (typeof values.ca === 'string') {
      try {
        ca = readFileSync(values.ca, 'utf8')
      } catch (err) {
        throw new UsageError(`cannot read --ca ${values.ca}: ${(err as Error).message}`)
      }
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--ca ${values.ca} is not a PEM certificate`)
    }
    const base: GatewayLogin = { url: u.origin, ...(ca ? { ca } : {}) }
    let login: GatewayLogin
    let who: string
    if (values['api-key'] === true) {
      const apiKey = ctx.env.NOIR_API_KEY
      if (!apiKey) throw new UsageError('--api-key reads the key from $NOIR_API_KEY, which is empty')
      login = { ...base, apiKey }
      await clientOf(login).workloads() // the key works (and has the deploy scope) before it is kept
      who = 'an API key'
    } else {
      const password = ctx.env.NOIR_PASSWORD
      if (!password) throw new UsageError('--email reads the password from $NOIR_PASSWORD, which is empty')
      const c = clientOf({ ...base, apiKey: '' })
      const account = await c.login(values.email as string, password, typeof values.totp === 'string' ? values.totp : undefined)
      login = { ...base, session: c.session!, email: account.email }
      who = account.email
    }
    saveLogin(ctx.home, login)
    if (ctx.json) printJson(ctx, { gateway: login.url, as: who })
    else printLine(ctx, `logged in to ${login.url} as ${who}; deploy, ps, status, logs and stop now go there (noir logout to stop)`)
  },
}

export const logoutCommand: Command = {
  path: ['logout'],
  summary: 'forget the gateway login (deployment commands go to the local daemon again)',
  usage: 'Usage: noir logout\n\nEnds the session at the gateway (when the login is a session) and removes NOIR_HOME/gateway-login.json.',
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'noir logout' })
    const login = readLogin(ctx.home)
    if (!login) {
      printLine(ctx, 'not logged in to a gateway')
      return
    }
    if (login.session) await clientOf(login).logout().catch(() => undefined) // the session ends there too when the gateway answers
    forgetLogin(ctx.home)
    printLine(ctx, `logged out of ${login.url}`)
  },
}
