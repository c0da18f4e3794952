// A real SMTP server on loopback (smtp-server) that keeps what it receives, for the gateway's tests, and the
// reading of a mail's body as a person's client would show it (quoted-printable undone), and an account signed up
// through it.
import type { AddressInfo } from 'node:net'
import { SMTPServer } from 'smtp-server'
import { NoirClient } from '../../client/noir-client.ts'

export interface Received { to: string; body: string }
export interface MailRig { port: number; mails: Received[]; lastMailTo(to: string, after?: number): Promise<string> }

export async function smtpOnLoopback(t: { teardown(fn: () => Promise<void> | void): void }): Promise<MailRig> {
  const mails: Received[] = []
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS'], logger: false,
    onData(stream, session, cb) {
      let body = ''
      stream.on('data', (c: Buffer) => (body += c.toString('utf8')))
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), body })
        cb()
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  const lastMailTo = async (to: string, after = 0): Promise<string> => {
    for (let i = 0; i < 500; i++) {
      const m = mails.filter((x) => x.to === to).slice(after).at(-1)
      // quoted-printable (RFC 2045 6.7): soft line breaks joined, =XX decoded
      if (m) return m.body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)))
      await new Promise((r) => setTimeout(r, 10))
    }
    throw new Error(`no mail to ${to}`)
  }
  return { port: (server.server.address() as AddressInfo).port, mails, lastMailTo }
}

export const linkToken = (body: string, path: string): string => new RegExp(`${path}\\?token=([A-Za-z0-9_-]{43})`).exec(body)![1]!

/** A client of a new account at the gateway at `url`: signed up, its email verified through `mail`, logged in. */
export async function signedUpClient(url: string, mail: MailRig, email: string, password: string): Promise<NoirClient> {
  const c = new NoirClient({ url, retries: 0 })
  await c.signUp(email, password)
  await c.verifyEmail(linkToken(await mail.lastMailTo(email), 'verify'))
  await c.login(email, password)
  return c
}
