// The gateway's TLS certificate (spec/auth.md "TLS"): the one configured (--cert and --key), else the one it
// generated before (NOIR_HOME/gateway/tls.crt, tls.key), else a new self-signed one (ECDSA P-256, SHA-256,
// one year, the listen host and localhost as subject alternative names; selfsigned) whose SHA-256 fingerprint
// it prints, so a client can pin it. The private key is written 0600.
import { X509Certificate } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
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

export async function gatewayCertificate(o: { dir: string; host: string; certFile?: string; keyFile?: string }): Promise<TlsMaterial> {
  if (o.certFile !== undefined || o.keyFile !== undefined) {
    if (!o.certFile || !o.keyFile) throw new Error('a certificate needs both --cert and --key')
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
  const names = [...new Set([o.host, 'localhost', '127.0.0.1'])].filter((h) => h !== '0.0.0.0' && h !== '::')
  const pems = await generate([{ name: 'commonName', value: o.host }], {
    keyType: 'ec', curve: 'P-256', algorithm: 'sha256', notAfterDate: new Date(Date.now() + 365 * 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })) },
    ],
  })
  writeFileSync(keyPath, pems.private, { mode: 0o600 })
  writeFileSync(certPath, pems.cert, { mode: 0o644 })
  return { key: pems.private, cert: pems.cert, fingerprint: new X509Certificate(pems.cert).fingerprint256, generated: true }
}
