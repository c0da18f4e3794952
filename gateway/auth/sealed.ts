// Secrets the gateway must read back (TOTP secrets) are kept sealed at rest: AES-256-GCM under the gateway's
// own key (NOIR_HOME/gateway/secret.key, 32 random bytes, mode 0600), a fresh 12-byte nonce per seal, the
// account id as associated data (a sealed value moved to another account does not open).
// Format: "v1." + base64url(nonce || ciphertext || tag).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'

export class SealError extends Error {
  override name = 'SealError'
}

export class Sealer {
  readonly #key: Buffer

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new SealError('a gateway key is 32 bytes')
    this.#key = Buffer.from(key)
  }

  /** The key in `path`, made (0600) when there is none; refused when others can read it. */
  static fromFile(path: string): Sealer {
    if (!existsSync(path)) writeFileSync(path, randomBytes(32), { mode: 0o600, flag: 'wx' })
    const key = readFileSync(path)
    chmodSync(path, 0o600)
    return new Sealer(key)
  }

  seal(plain: string, context: string): string {
    const nonce = randomBytes(12)
    const c = createCipheriv('aes-256-gcm', this.#key, nonce)
    c.setAAD(Buffer.from(context, 'utf8'))
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()])
    return `v1.${Buffer.concat([nonce, body, c.getAuthTag()]).toString('base64url')}`
  }

  open(sealed: string, context: string): string {
    if (!sealed.startsWith('v1.')) throw new SealError('not a sealed value')
    const raw = Buffer.from(sealed.slice(3), 'base64url')
    if (raw.length < 12 + 16) throw new SealError('a sealed value is too short')
    const d = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12))
    d.setAAD(Buffer.from(context, 'utf8'))
    d.setAuthTag(raw.subarray(raw.length - 16))
    try {
      return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString('utf8')
    } catch {
      throw new SealError('the sealed value does not open with this key and context')
    }
  }
}
