// The gateway's TLS certificate (spec/auth.md "TLS"): the one configured (--cert and --key), else the one it
// generated before (NOIR_HOME/gateway/tls.crt, tls.key), else a new self-signed one whose SHA-256 fingerprint
// it prints, so a client can pin it. The work is appliance/tls/certificate.ts, shared with the service ingress.
import { serverCertificate, type TlsMaterial } from '../../appliance/tls/certificate.ts'

export type { TlsMaterial }

export async function gatewayCertificate(o: { dir: string; host: string; certFile?: string; keyFile?: string }): Promise<TlsMaterial> {
  return serverCertificate({
    dir: o.dir, hosts: [o.host], fileOptions: '--cert and --key',
    ...(o.certFile !== undefined ? { certFile: o.certFile } : {}), ...(o.keyFile !== undefined ? { keyFile: o.keyFile } : {}),
  })
}
