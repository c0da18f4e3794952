// The keystore: encrypted at rest, readable only by its owner, wrong passphrases and altered files refused.
import t from 'tap'
import { chmodSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { toString } from 'uint8arrays'
import {
  CorruptKeystoreError,
  IdentityExistsError,
  Keystore,
  keystorePath,
  NodeKey,
  NoIdentityError,
  NoPassphraseError,
  passphraseFrom,
  WrongPassphraseError,
} from '../index.ts'
import { rejectsA, throwsA } from './helpers.ts'

function home(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'noir-ks-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'home')
}

t.test('a created key loads back with the right passphrase', async (t) => {
  const h = home(t)
  t.notOk(Keystore.exists(h))
  const key = await Keystore.create(h, 'correct horse')
  t.ok(Keystore.exists(h))
  t.equal(Keystore.publicDid(h), key.did)
  const loaded = await Keystore.load(h, 'correct horse')
  t.equal(loaded.did, key.did)
  t.same(loaded.sign(Buffer.from('x')), key.sign(Buffer.from('x')))
})

t.test('a wrong passphrase is refused with WrongPassphraseError', async (t) => {
  const h = home(t)
  await Keystore.create(h, 'right')
  await rejectsA(t, () => Keystore.load(h, 'wrong'), WrongPassphraseError)
  await rejectsA(t, () => Keystore.load(h, ''), WrongPassphraseError)
})

t.test('the key file is 0600 and its folder 0700 (unreadable to others)', async (t) => {
  const h = home(t)
  await Keystore.create(h, 'pw')
  t.equal(statSync(keystorePath(h)).mode & 0o777, 0o600)
  t.equal(statSync(join(h, 'keystore')).mode & 0o777, 0o700)
})

t.test('the file holds no key material in clear, in any common encoding', async (t) => {
  const h = home(t)
  const key = NodeKey.generate()
  await Keystore.create(h, 'pw', key)
  const text = readFileSync(keystorePath(h), 'utf8')
  const seed = key.exportSeed()
  for (const enc of ['hex', 'base64', 'base64url', 'base58btc'] as const) t.notOk(text.includes(toString(seed, enc)), enc)
  const f = JSON.parse(text) as Record<string, unknown>
  t.equal((f.kdf as { name: string; N: number }).name, 'scrypt')
  t.ok((f.kdf as { N: number }).N >= 2 ** 15, 'memory-hard parameters')
})

t.test('an existing identity is not overwritten unless forced', async (t) => {
  const h = home(t)
  const first = await Keystore.create(h, 'pw')
  await rejectsA(t, () => Keystore.create(h, 'pw'), IdentityExistsError)
  t.equal(Keystore.publicDid(h), first.did)
  const second = await Keystore.create(h, 'pw2', undefined, { force: true })
  t.not(second.did, first.did)
  t.equal((await Keystore.load(h, 'pw2')).did, second.did)
})

t.test('an altered file is refused: swapped DID, changed parameters, garbage', async (t) => {
  const h = home(t)
  await Keystore.create(h, 'pw')
  const path = keystorePath(h)
  const orig = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
  writeFileSync(path, JSON.stringify({ ...orig, did: NodeKey.generate().did }))
  await rejectsA(t, () => Keystore.load(h, 'pw'), WrongPassphraseError, 'swapped DID fails authentication')
  writeFileSync(path, JSON.stringify({ ...orig, kdf: { ...(orig.kdf as object), N: 2 ** 16 } }))
  await rejectsA(t, () => Keystore.load(h, 'pw'), WrongPassphraseError, 'changed N')
  writeFileSync(path, JSON.stringify({ ...orig, kdf: { ...(orig.kdf as object), N: 2 } }))
  await rejectsA(t, () => Keystore.load(h, 'pw'), CorruptKeystoreError, 'weak N refused')
  writeFileSync(path, 'not json')
  await rejectsA(t, () => Keystore.load(h, 'pw'), CorruptKeystoreError, 'garbage')
})

t.test('a missing identity is NoIdentityError', async (t) => {
  const h = home(t)
  await rejectsA(t, () => Keystore.load(h, 'pw'), NoIdentityError)
  throwsA(t, () => Keystore.publicDid(h), NoIdentityError)
})

t.test('the passphrase comes from NOIR_PASSPHRASE; no variable and no terminal is NoPassphraseError', async (t) => {
  t.equal(await passphraseFrom({ NOIR_PASSPHRASE: 'from-env' }), 'from-env')
  await rejectsA(t, () => passphraseFrom({}, false), NoPassphraseError, 'prompt disabled')
  if (!process.stdin.isTTY) await rejectsA(t, () => passphraseFrom({ NOIR_PASSPHRASE: '' }), NoPassphraseError, 'no TTY')
  await rejectsA(t, () => Keystore.create(home(t), ''), NoPassphraseError, 'empty passphrase')
})

t.test('the passphrase can come on a descriptor or from a 0600 file, ahead of the environment', async (t) => {
  const dir = home(t)
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'pass')
  writeFileSync(file, 'from-file\n', { mode: 0o600 })
  t.equal(await passphraseFrom({ NOIR_PASSPHRASE_FILE: file, NOIR_PASSPHRASE: 'from-env' }), 'from-file', 'the file wins; its trailing newline is dropped')
  writeFileSync(join(dir, 'open'), 'x', { mode: 0o644 })
  chmodSync(join(dir, 'open'), 0o644)
  await rejectsA(t, () => passphraseFrom({ NOIR_PASSPHRASE_FILE: join(dir, 'open') }), NoPassphraseError, 'a file others may read is refused')
  symlinkSync(file, join(dir, 'link'))
  await rejectsA(t, () => passphraseFrom({ NOIR_PASSPHRASE_FILE: join(dir, 'link') }), NoPassphraseError, 'a link is not followed')
  const fd = openSync(file, 'r')
  t.equal(await passphraseFrom({ NOIR_PASSPHRASE_FD: String(fd) }), 'from-file', 'read from the descriptor, which is then closed')
  await rejectsA(t, () => passphraseFrom({ NOIR_PASSPHRASE_FD: '1' }), NoPassphraseError, 'stdin, stdout and stderr are not passphrase descriptors')
  await rejectsA(t, () => passphraseFrom({ NOIR_PASSPHRASE_FD: 'x' }), NoPassphraseError)
})
