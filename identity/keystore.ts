// The node key on disk (spec/identity.md): $HOME/keystore/node.json, the seed encrypted with AES-256-GCM under a
// key derived from the passphrase by scrypt (memory-hard; parameters stored in the file). The public part (DID)
// is stored in clear and bound to the ciphertext as additional authenticated data. File 0600, folder 0700.
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto'
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { canonicalJson } from './canonical-json.ts'
import { isDidKey } from './did-key.ts'
import { CorruptKeystoreError, IdentityExistsError, NoIdentityError, NoPassphraseError, WrongPassphraseError } from './errors.ts'
import { NodeKey } from './keys.ts'

export const KEYSTORE_DIR = 'keystore'
export const KEYSTORE_FILE = 'node.json'
export const SCRYPT_DEFAULTS = { N: 2 ** 15, r: 8, p: 1 } as const

export interface KeystoreFile {
  kind: 'noir-keystore'
  version: 1
  did: string
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string /* base64url, 16 bytes */ }
  cipher: { name: 'aes-256-gcm'; iv: string /* base64url, 12 bytes */; tag: string /* base64url, 16 bytes */ }
  /** base64url of the encrypted 32-byte seed. */
  ciphertext: string
}

export function keystorePath(home: string): string {
  return join(home, KEYSTORE_DIR, KEYSTORE_FILE)
}

function scrypt(passphrase: string, salt: Buffer, o: { N: number; r: number; p: number }): Promise<Buffer> {
  const opts: ScryptOptions = { N: o.N, r: o.r, p: o.p, maxmem: 256 * o.N * o.r + 16 * 1024 * 1024 }
  return new Promise((resolve, reject) => scryptCb(passphrase.normalize('NFC'), salt, 32, opts, (err, key) => (err ? reject(err) : resolve(key))))
}

/** What the GCM tag also authenticates: every clear field of the file. */
function aad(f: Pick<KeystoreFile, 'kind' | 'version' | 'did' | 'kdf'> & { cipher: { name: string; iv: string } }): Buffer {
  return Buffer.from(canonicalJson({ kind: f.kind, version: f.version, did: f.did, kdf: f.kdf, cipher: { name: f.cipher.name, iv: f.cipher.iv } }))
}

function readFile(home: string): KeystoreFile {
  const path = keystorePath(home)
  if (!existsSync(path)) throw new NoIdentityError(`no identity in ${home} (create one with \`noir id new\`)`)
  let f: KeystoreFile
  try {
    f = JSON.parse(readFileSync(path, 'utf8')) as KeystoreFile
  } catch {
    throw new CorruptKeystoreError(`${path} is not JSON`)
  }
  const ok =
    f && f.kind === 'noir-keystore' && f.version === 1 && typeof f.did === 'string' && isDidKey(f.did) &&
    f.kdf?.name === 'scrypt' && Number.isSafeInteger(f.kdf.N) && f.kdf.N >= 2 ** 14 && f.kdf.N <= 2 ** 20 &&
    Number.isSafeInteger(f.kdf.r) && f.kdf.r >= 1 && f.kdf.r <= 32 && Number.isSafeInteger(f.kdf.p) && f.kdf.p >= 1 && f.kdf.p <= 16 &&
    typeof f.kdf.salt === 'string' && f.cipher?.name === 'aes-256-gcm' && typeof f.cipher.iv === 'string' &&
    typeof f.cipher.tag === 'string' && typeof f.ciphertext === 'string'
  if (!ok) throw new CorruptKeystoreError(`${path} is not a noir keystore this version reads`)
  return f
}

// oxlint-disable-next-line typescript/no-extraneous-class -- the agreed API (other layers call Keystore.load)
export class Keystore {
  /** Writes `key` (default: a new one) encrypted under `passphrase`. Refuses to overwrite unless `force`. */
  static async create(home: string, passphrase: string, key?: NodeKey, opts: { force?: boolean; kdf?: { N: number; r: number; p: number } } = {}): Promise<NodeKey> {
    if (typeof passphrase !== 'string' || passphrase.length === 0) throw new NoPassphraseError('an empty passphrase is not allowed')
    const path = keystorePath(home)
    if (existsSync(path) && !opts.force) throw new IdentityExistsError(`an identity already exists in ${home} (use --force to replace it)`)
    const k = key ?? NodeKey.generate()
    const params = opts.kdf ?? SCRYPT_DEFAULTS
    const salt = randomBytes(16)
    const iv = randomBytes(12)
    const dk = await scrypt(passphrase, salt, params)
    const header = {
      kind: 'noir-keystore' as const,
      version: 1 as const,
      did: k.did,
      kdf: { name: 'scrypt' as const, N: params.N, r: params.r, p: params.p, salt: salt.toString('base64url') },
      cipher: { name: 'aes-256-gcm' as const, iv: iv.toString('base64url') },
    }
    const cipher = createCipheriv('aes-256-gcm', dk, iv)
    cipher.setAAD(aad(header))
    const seed = k.exportSeed()
    const ct = Buffer.concat([cipher.update(seed), cipher.final()])
    seed.fill(0)
    dk.fill(0)
    const file: KeystoreFile = { ...header, cipher: { ...header.cipher, tag: cipher.getAuthTag().toString('base64url') }, ciphertext: ct.toString('base64url') }
    const dir = join(home, KEYSTORE_DIR)
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    chmodSync(dir, 0o700)
    const tmp = `${path}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(file, null, 2) + '\n', { mode: 0o600, flag: 'w' })
    chmodSync(tmp, 0o600)
    renameSync(tmp, path)
    return k
  }

  /** Decrypts the node key. WrongPassphraseError when the passphrase (or the file) does not authenticate. */
  static async load(home: string, passphrase: string): Promise<NodeKey> {
    const f = readFile(home)
    const dk = await scrypt(passphrase, Buffer.from(f.kdf.salt, 'base64url'), f.kdf)
    let seed: Buffer
    try {
      const d = createDecipheriv('aes-256-gcm', dk, Buffer.from(f.cipher.iv, 'base64url'))
      d.setAAD(aad(f))
      d.setAuthTag(Buffer.from(f.cipher.tag, 'base64url'))
      seed = Buffer.concat([d.update(Buffer.from(f.ciphertext, 'base64url')), d.final()])
    } catch {
      throw new WrongPassphraseError('wrong passphrase (or the keystore file was altered)')
    } finally {
      dk.fill(0)
    }
    if (seed.length !== 32) throw new CorruptKeystoreError('keystore holds a key of the wrong size')
    const key = NodeKey.fromSeed(seed)
    seed.fill(0)
    if (key.did !== f.did) throw new CorruptKeystoreError('keystore key does not match its recorded DID')
    return key
  }

  static exists(home: string): boolean {
    return existsSync(keystorePath(home))
  }

  /** The DID recorded in the keystore, read without the passphrase. */
  static publicDid(home: string): string {
    return readFile(home).did
  }
}

/** Characters typed after a line ended (e.g. both answers arriving at once), kept for the next prompt. */
let pendingInput = ''

/** Reads a line from the terminal without echoing it. */
async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin
  const out = process.stderr
  // no echo BEFORE the question shows, or a quick typist's first characters would be echoed
  stdin.setRawMode(true)
  stdin.resume()
  stdin.setEncoding('utf8')
  out.write(question)
  return new Promise((resolve, reject) => {
    let buf = ''
    const finish = (err?: Error): void => {
      stdin.off('data', onData)
      stdin.off('end', onEnd)
      stdin.setRawMode(false)
      stdin.pause()
      out.write('\n')
      if (err) reject(err)
      else resolve(buf)
    }
    const consume = (text: string): boolean => {
      for (let i = 0; i < text.length; i++) {
        const ch = text[i]!
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          pendingInput = text.slice(i + 1).replace(/^\n/, '')
          finish()
          return true
        }
        if (ch === '\u0003') {
          pendingInput = ''
          finish(new NoPassphraseError('passphrase prompt interrupted'))
          return true
        }
        if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1)
        else buf += ch
      }
      return false
    }
    const onData = (chunk: string): void => {
      consume(chunk)
    }
    const onEnd = (): void => finish(new NoPassphraseError('terminal closed before a passphrase was entered'))
    const early = pendingInput
    pendingInput = ''
    if (consume(early)) return
    stdin.on('data', onData)
    stdin.on('end', onEnd)
  })
}

/**
 * The passphrase, from the first of: the file descriptor named by NOIR_PASSPHRASE_FD (read to its end, then
 * closed), the file named by NOIR_PASSPHRASE_FILE (a regular file no one but its owner may read: mode 0600
 * or stricter), NOIR_PASSPHRASE, else a no-echo prompt on the terminal (when `prompt` and stdin is a TTY).
 * The descriptor and the file keep the passphrase out of the process environment, which other processes of
 * the same user can read in /proc/PID/environ (spec/identity.md). A trailing newline is dropped.
 * With `confirm`, the prompt asks twice. Nothing usable -> NoPassphraseError.
 */
export async function passphraseFrom(env: NodeJS.ProcessEnv, prompt = true, confirm = false): Promise<string> {
  const fd = env.NOIR_PASSPHRASE_FD
  if (fd !== undefined && fd !== '') {
    if (!/^[0-9]{1,4}$/.test(fd) || Number(fd) < 3) throw new NoPassphraseError(`NOIR_PASSPHRASE_FD must be a file descriptor number >= 3 (got '${fd.slice(0, 16)}')`)
    let text: string
    try {
      text = readFileSync(Number(fd), 'utf8')
      closeSync(Number(fd))
    } catch (err) {
      throw new NoPassphraseError(`cannot read the passphrase from file descriptor ${fd}: ${(err as Error).message}`)
    }
    return nonEmpty(text.replace(/\r?\n$/, ''), `file descriptor ${fd}`)
  }
  const file = env.NOIR_PASSPHRASE_FILE
  if (file !== undefined && file !== '') {
    let st
    try {
      st = lstatSync(file)
    } catch (err) {
      throw new NoPassphraseError(`cannot read the passphrase file ${file}: ${(err as Error).message}`)
    }
    if (!st.isFile()) throw new NoPassphraseError(`the passphrase file ${file} is not a regular file`)
    if ((st.mode & 0o077) !== 0) throw new NoPassphraseError(`the passphrase file ${file} may be read by others (mode ${(st.mode & 0o777).toString(8)}; chmod 600 it)`)
    return nonEmpty(readFileSync(file, 'utf8').replace(/\r?\n$/, ''), `file ${file}`)
  }
  const fromEnv = env.NOIR_PASSPHRASE
  if (fromEnv !== undefined && fromEnv.length > 0) return fromEnv
  if (!prompt || !process.stdin.isTTY) {
    throw new NoPassphraseError('no passphrase: set NOIR_PASSPHRASE_FD, NOIR_PASSPHRASE_FILE or NOIR_PASSPHRASE, or run in a terminal to be prompted')
  }
  const p = await promptHidden('Passphrase: ')
  if (p.length === 0) throw new NoPassphraseError('an empty passphrase is not allowed')
  if (confirm && (await promptHidden('Repeat passphrase: ')) !== p) throw new NoPassphraseError('the passphrases do not match')
  return p
}

function nonEmpty(p: string, from: string): string {
  if (p.length === 0) throw new NoPassphraseError(`the passphrase from ${from} is empty`)
  return p
}
