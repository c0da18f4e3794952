// The replay cache behind EnvelopeVerifier (spec/envelope.md, "Replay"): remembers accepted (sender DID, id,
// nonce) until the envelope could no longer pass the expiry check.
//
// Bounded: when full, the oldest entry is evicted and its deadline becomes a floor; an unseen envelope whose
// deadline is not after the floor cannot be proven fresh and is refused (deny by default).
//
// Layout, chosen for the garbage collector: a key is remembered as a 128-bit digest, sha256(salt ‖ key)
// truncated, with a random salt per cache (so no sender can aim keys at one part of the table), in an
// open-addressing table of Uint32 words (linear probing, backward-shift deletion), beside a ring of the same
// digests and their deadlines in arrival order (roughly deadline order), so expiry and eviction cost O(1)
// each. An earlier version kept the key strings in a Set: ~300 bytes and 5 heap objects per entry, all of
// them surviving into the old generation, which at 50k envelopes/s made the collector the receiver's largest
// cost. A false "replayed" needs two keys whose digests agree in 128 bits.
import { hash, randomBytes } from 'node:crypto'
import { ReplayedEnvelopeError } from './errors.ts'

const WORDS = 4
const MIN_SLOTS = 1024

export class ReplayCache {
  readonly #max: number
  readonly #salt = randomBytes(16).toString('latin1')
  /** Twice the ring's slots (so at most half full) x 4 words; all four zero = empty. */
  #table = new Uint32Array(2 * MIN_SLOTS * WORDS)
  #mask = 2 * MIN_SLOTS - 1
  /** Arrival-order ring: digests (4 words each) and deadlines. */
  #ringKeys = new Uint32Array(MIN_SLOTS * WORDS)
  #ringDeadlines = new Float64Array(MIN_SLOTS)
  #head = 0
  #count = 0
  #floor = -Infinity
  readonly #d = new Uint32Array(WORDS)

  constructor(max = 250_000) {
    this.#max = Math.max(1, Math.floor(max))
  }

  get size(): number {
    return this.#count
  }

  /** Records the key; throws ReplayedEnvelopeError if it was seen or cannot be ruled out. */
  admit(key: string, deadline: number, now: number): void {
    // drop expired entries at the front (the common case, nothing expired, costs one comparison)
    while (this.#count > 0 && this.#ringDeadlines[this.#head]! < now) this.#shift()
    const d = this.#digest(key)
    if (this.#find(d) >= 0) throw new ReplayedEnvelopeError('envelope already received (same sender, id and nonce)')
    if (deadline <= this.#floor) {
      throw new ReplayedEnvelopeError('replay cache is saturated: an envelope expiring this early cannot be proven fresh; resend with a later exp')
    }
    if (this.#count >= this.#max) {
      const evicted = this.#ringDeadlines[this.#head]!
      this.#shift()
      if (evicted > this.#floor) this.#floor = evicted
    }
    if (this.#count === this.#ringDeadlines.length) this.#grow()
    this.#insert(d)
    const at = (this.#head + this.#count) % this.#ringDeadlines.length
    this.#ringKeys.set(d, at * WORDS)
    this.#ringDeadlines[at] = deadline
    this.#count++
  }

  #digest(key: string): Uint32Array {
    const h = hash('sha256', this.#salt + key, 'binary')
    const d = this.#d
    for (let w = 0; w < WORDS; w++) {
      const o = w * 4
      d[w] = (h.charCodeAt(o) | (h.charCodeAt(o + 1) << 8) | (h.charCodeAt(o + 2) << 16) | (h.charCodeAt(o + 3) << 24)) >>> 0
    }
    if ((d[0]! | d[1]! | d[2]! | d[3]!) === 0) d[3] = 1 // all zero marks an empty slot
    return d
  }

  /** The slot holding `d`, or -1. */
  #find(d: Uint32Array): number {
    const t = this.#table
    for (let i = d[0]! & this.#mask; ; i = (i + 1) & this.#mask) {
      const o = i * WORDS
      if ((t[o]! | t[o + 1]! | t[o + 2]! | t[o + 3]!) === 0) return -1
      if (t[o] === d[0] && t[o + 1] === d[1] && t[o + 2] === d[2] && t[o + 3] === d[3]) return i
    }
  }

  #insert(d: Uint32Array): void {
    const t = this.#table
    let i = d[0]! & this.#mask
    while ((t[i * WORDS]! | t[i * WORDS + 1]! | t[i * WORDS + 2]! | t[i * WORDS + 3]!) !== 0) i = (i + 1) & this.#mask
    t.set(d, i * WORDS)
  }

  /** Forgets the oldest entry. */
  #shift(): void {
    const h = this.#head
    this.#remove(this.#ringKeys.subarray(h * WORDS, h * WORDS + WORDS))
    this.#head = (h + 1) % this.#ringDeadlines.length
    this.#count--
  }

  /** Deletes `d` from the table, shifting later members of its probe run back (no tombstones). */
  #remove(d: Uint32Array): void {
    let i = this.#find(d)
    if (i < 0) return
    const t = this.#table
    const mask = this.#mask
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const o = j * WORDS
      if ((t[o]! | t[o + 1]! | t[o + 2]! | t[o + 3]!) === 0) break
      const home = t[o]! & mask
      // slot j may move back to i when its home is not in the cyclic range (i, j]
      const between = i <= j ? home > i && home <= j : home > i || home <= j
      if (!between) {
        t.copyWithin(i * WORDS, o, o + WORDS)
        i = j
      }
    }
    t.fill(0, i * WORDS, i * WORDS + WORDS)
  }

  /** Doubles the ring, and the table with it (kept at most half full), re-inserting every entry. */
  #grow(): void {
    const oldKeys = this.#ringKeys
    const oldDeadlines = this.#ringDeadlines
    const n = oldDeadlines.length
    const size = n * 2
    this.#ringKeys = new Uint32Array(size * WORDS)
    this.#ringDeadlines = new Float64Array(size)
    this.#table = new Uint32Array(size * 2 * WORDS)
    this.#mask = size * 2 - 1
    for (let k = 0; k < this.#count; k++) {
      const from = (this.#head + k) % n
      const d = oldKeys.subarray(from * WORDS, from * WORDS + WORDS)
      this.#ringKeys.set(d, k * WORDS)
      this.#ringDeadlines[k] = oldDeadlines[from]!
      this.#insert(d)
    }
    this.#head = 0
  }
}
