// Mail through a configured SMTP server (nodemailer). The gateway sends verification and reset links; the
// mail names nothing but what the recipient needs (no account ids, no secrets beyond the one-time link).
import nodemailer, { type Transporter } from 'nodemailer'

export interface SmtpConfig {
  host: string
  port: number
  /** TLS from the first byte (465); otherwise STARTTLS when the server offers it. */
  secure?: boolean
  /** The From address. */
  from: string
  auth?: { user: string; pass: string }
  /** Tests against a loopback server without a certificate. */
  allowUnverifiedTls?: boolean
}

export interface Mail {
  to: string
  subject: string
  text: string
}

export class Mailer {
  readonly #t: Transporter
  readonly #from: string

  constructor(c: SmtpConfig) {
    this.#from = c.from
    this.#t = nodemailer.createTransport({
      host: c.host, port: c.port, secure: c.secure ?? false, ...(c.auth ? { auth: c.auth } : {}),
      ...(c.allowUnverifiedTls ? { tls: { rejectUnauthorized: false } } : {}),
    })
  }

  async send(m: Mail): Promise<void> {
    await this.#t.sendMail({ from: this.#from, to: m.to, subject: m.subject, text: m.text })
  }

  close(): void {
    this.#t.close()
  }
}
