// identity/ed25519.ts: both implementations agree with RFC 8032 and with each other, refuse what an attacker
// would try (a signature of another message or key, a small-order key with a signature that holds for every
// message, a non-canonical S, wrong lengths), and libsodium is the one chosen where it loads.
import t from 'tap'
import { Worker } from 'node:worker_threads'
import { chooseEd25519, ed25519, loadLibsodiumEd25519, nodeCryptoEd25519, type Ed25519 } from '../ed25519.ts'
import { NodeKey, verifyEd25519, verifyEd25519ForDid } from '../keys.ts'

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

// RFC 8032 section 7.1, TEST 1-3: seed, public key, message, signature.
const VECTORS = [
  ['9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', '', 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'],
  ['4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', '72', '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'],
  ['c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7', 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025', 'af82', '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a'],
] as const

const sodium = loadLibsodiumEd25519()
const impls: Ed25519[] = [nodeCryptoEd25519, ...(sodium ? [sodium] : [])]

// sodium-native ships builds for linux/darwin/win32 on x64 and arm64: a platform without one falls back
const supported = ['linux', 'darwin', 'win32'].includes(process.platform) && ['x64', 'arm64'].includes(process.arch)
const skipChoice = !supported && process.env.CI !== 'true' ? `no sodium-native build for ${process.platform}-${process.arch}: node:crypto is used` : false
t.test('libsodium loads on this platform and is the one chosen', { skip: skipChoice }, async (t) => {
  t.ok(sodium, 'sodium-native loads')
  t.equal(ed25519.name, process.env.NOIR_ED25519 === 'node-crypto' ? 'node:crypto' : 'libsodium')
  t.equal(chooseEd25519(undefined).name, 'libsodium')
  t.equal(chooseEd25519('libsodium').name, 'libsodium')
  t.equal(chooseEd25519('node-crypto').name, 'node:crypto')
  t.throws(() => chooseEd25519('openssl'), /NOIR_ED25519="openssl": use libsodium or node-crypto/)
  // the signature worker's thread chooses on its own: the binding must load there too, not fall back
  const inThread = await new Promise<unknown>((resolve, reject) => {
    const w = new Worker(`import(${JSON.stringify(new URL('../ed25519.ts', import.meta.url).href)}).then((m) => require('node:worker_threads').parentPort.postMessage(m.ed25519.name))`, { eval: true })
    w.once('message', (m) => {
      resolve(m)
      void w.terminate()
    })
    w.once('error', reject)
  })
  t.equal(inThread, ed25519.name, 'a worker thread uses the same implementation')
})

for (const impl of impls) {
  t.test(`${impl.name}: RFC 8032 vectors`, async (t) => {
    for (const [seed, pub, msg, sig] of VECTORS) {
      t.equal(toHex(impl.signer(hex(seed), hex(pub))(hex(msg))), sig, `signs ${msg || '(empty)'} as the RFC does`)
      t.equal(impl.verify(impl.prepare(hex(pub)), hex(msg), hex(sig)), true, 'verifies the RFC signature')
    }
  })

  t.test(`${impl.name}: what an attacker tries is refused`, async (t) => {
    const [seed, pub, msg, sig] = VECTORS[2]
    const key = impl.prepare(hex(pub))
    t.equal(impl.verify(key, hex('af83'), hex(sig)), false, 'another message')
    t.equal(impl.verify(impl.prepare(hex(VECTORS[1][1])), hex(msg), hex(sig)), false, 'another key')
    const flipped = hex(sig)
    flipped[10]! ^= 1
    t.equal(impl.verify(key, hex(msg), flipped), false, 'a flipped bit in R')
    t.equal(impl.verify(key, hex(msg), hex(sig).subarray(0, 63)), false, 'a short signature (false, not a throw)')
    t.equal(impl.verify(key, hex(msg), new Uint8Array(65)), false, 'a long signature')
    t.throws(() => impl.prepare(new Uint8Array(31)), RangeError, 'a 31-byte public key')
    // the identity point as public key and as R with S = 0 satisfies [S]B = R + [k]A for every message
    const identity = new Uint8Array(32)
    identity[0] = 1
    const forged = new Uint8Array(64)
    forged[0] = 1
    t.equal(impl.verify(impl.prepare(identity), new TextEncoder().encode('pay mallory'), forged), false, 'a small-order key with a signature that holds for any message')
    // S + L: the same point equation, a second encoding of one signature (malleability)
    const L = (1n << 252n) + 27742317777372353535851937790883648493n
    const good = hex(sig)
    let s = 0n
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(good[32 + i]!)
    let s2 = s + L
    const malleated = Uint8Array.from(good)
    for (let i = 0; i < 32; i++) {
      malleated[32 + i] = Number(s2 & 255n)
      s2 >>= 8n
    }
    t.equal(impl.verify(key, hex(msg), malleated), false, 'a non-canonical S (S + L)')
    t.equal(impl.verify(key, hex(msg), good), true, 'the genuine signature still verifies')
    void seed
  })
}

t.test('the two implementations agree: each verifies the other, same bytes signed', { skip: sodium ? false : 'sodium-native does not load here' }, async (t) => {
  for (let i = 0; i < 20; i++) {
    const k = NodeKey.generate()
    const seed = k.exportSeed()
    const msg = new Uint8Array(Buffer.from(`message ${i} `.repeat(i + 1)))
    const a = nodeCryptoEd25519.signer(seed, k.publicKey)(msg)
    const b = sodium!.signer(seed, k.publicKey)(msg)
    t.equal(toHex(a), toHex(b), 'deterministic: the same 64 bytes')
    t.ok(sodium!.verify(sodium!.prepare(k.publicKey), msg, a) && nodeCryptoEd25519.verify(nodeCryptoEd25519.prepare(k.publicKey), msg, b))
  }
})

t.test('a signer refuses a public key that is not its seed\'s', async (t) => {
  const [seed] = VECTORS[0]
  for (const impl of impls.filter((i) => i.name === 'libsodium')) t.throws(() => impl.signer(hex(seed), hex(VECTORS[1][1])), /another public key/)
})

t.test('NodeKey signs and keys.ts verifies through the chosen implementation (over shared memory too)', async (t) => {
  const k = NodeKey.generate()
  const shared = new Uint8Array(new SharedArrayBuffer(256))
  const msg = new TextEncoder().encode('a bid, in a signature ring')
  shared.set(msg, 16)
  shared.set(k.sign(msg), 128)
  t.ok(verifyEd25519ForDid(k.did, shared.subarray(16, 16 + msg.length), shared.subarray(128, 192)))
  t.notOk(verifyEd25519ForDid(k.did, shared.subarray(16, 15 + msg.length), shared.subarray(128, 192)), 'a byte short of the message')
  t.ok(verifyEd25519(k.publicKey, msg, k.sign(msg)))
  t.notOk(verifyEd25519(k.publicKey.subarray(1), msg, k.sign(msg)), 'a 31-byte key: false, not a throw')
})
