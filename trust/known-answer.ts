// Known-answer validation tasks (spec/trust.md "Validation tasks"): a deterministic computation whose output
// the validator works out itself. The task is a WASI job (appliance/executor/wasm/known-answer-module.ts
// assembles the module) that reads the environment variable SEED, mixes its bytes and prints the result as
// 8 hex digits and a newline, exit 0. Each task draws a new seed, so a provider cannot keep an answer from
// one task for the next: it has to run the work. This file is the reference the validator computes with.
import { randomBytes } from 'node:crypto'
import { outputDigest } from './digest.ts'

/** Rounds of the mixing loop (a few ms of work in a WASI module). */
export const KNOWN_ANSWER_ROUNDS = 200_000
/** The environment variable the module reads. */
export const KNOWN_ANSWER_VAR = 'SEED'

/** FNV-1a over the seed's bytes, then `KNOWN_ANSWER_ROUNDS` rounds of xor-shift-multiply (32-bit). */
export function knownAnswerHash(seed: string): number {
  let h = 0x811c9dc5
  for (const b of Buffer.from(seed, 'utf8')) h = Math.imul(h ^ b, 0x01000193)
  for (let r = 0; r < KNOWN_ANSWER_ROUNDS; r++) {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d)
    h ^= r
  }
  return h >>> 0
}

/** The line the module prints for `seed`. */
export function knownAnswerOutput(seed: string): string {
  return knownAnswerHash(seed).toString(16).padStart(8, '0')
}

/** The digest a correct run of the task for `seed` has. */
export function knownAnswerDigest(seed: string): string {
  return outputDigest(0, [knownAnswerOutput(seed)])
}

/** A fresh seed: 16 hex digits (no '=' or NUL, so the module's parser needs nothing more). */
export function newSeed(): string {
  return randomBytes(8).toString('hex')
}
