// A server's TLS certificate, shared by the gateway (spec/auth.md "TLS") and the service ingress
// (spec/ingress.md "TLS"): the one configured (a certificate file and its key), else the one generated before
// in `dir` (tls.crt, tls.key) while it has more than a day left, else a new self-signed one (ECDSA P-256,
// SHA-256, one year, the given hosts plus localhost and 127.0.0.1 as subject alternative names) whose SHA-256
// fingerprint the caller prints, so a client can pin it. The private key is written 0600.
import { X509Certificate } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { generate } from 'selfsigned'

export interface TlsMaterial {
  key: string
  cert: string
  /** SHA-256 of the certificate (colon-separated hex, as `openssl x509 -fingerprint -sha256` prints it). */
  fingerprint: string
  generated: boolean
}

export interface CertificateOptions {
  /** Where a self-signed certificate is kept (created if missing). */
  dir: string
  /** Subject (the first) and subject alternative names of a generated certificate. */
  hosts: string[]
  certFile?: string
  keyFile?: string
  /** How the two file options are called where they are set (for the error), e.g. "--cert and --key". */
  fileOptions?: string
}

export async function serverCertificate(o: CertificateOptions): Promise<TlsMaterial> {
  if (o.certFile !== undefined || o.keyFile !== undefined) {
    if (!o.certFile || !o.keyFile) throw new Error(`a certificate needs both ${o.fileOptions ?? 'a certificate and a key file'}`)
    const cert = readFileSync(o.certFile, 'utf8')
    return { key: readFileSync(o.keyFile, 'utf8'), cert, fingerprint: new X509Certificate(cert).fingerprint256, generated: false }
  }
  const certPath = join(o.dir, 'tls.crt')
  const keyPath = join(o.dir, 'tls.key')
  if (existsSync(certPath) && existsSync(keyPath)) {
    const cert = readFileSync(certPath, 'utf8')
    const x = new X509Certificate(cert)
    if (new Date(x.validTo).getTime() > Date.now() + 24 * 3600_000) return { key: readFileSync(keyPath, 'utf8'), cert, fingerprint: x.fingerprint256, generated: false }
  }
  const names = [...new Set([...o.hosts, 'localhost', '127.0.0.1'])].filter((h) => h !== '0.0.0.0' && h !== '::')
  const pems = await generate([{ name: 'commonName', value: names[0]! }], {
    keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notAfterDate: new Date(Date.now() + 365 * 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })) },
    ],
  })
  mkdirSync(o.dir, { recursive: true, mode: 0o700 })
  writeFileSync(keyPath, pems.private, { mode: 0o600 })
  writeFileSync(certPath, pems.cert, { mode: 0o644 })
  return { key: pems.private, cert: pems.cert, fingerprint: new X509Certificate(pems.cert).fingerprint256, generated: true }
}
