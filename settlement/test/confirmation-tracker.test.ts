// The tracker's rules on a scripted chain (the real-chain proofs are in evm/test and cardano/test): credit
// at the depth, never a deposit a shallow reorganisation removed, stop on a deep one.
import t from 'tap'
import { ConfirmationTracker, type DepositSource } from '../confirmation-tracker.ts'
import { DeepReorgError } from '../errors.ts'
import { externalRef } from '../external-ref.ts'
import type { BlockPoint, ObservedDeposit } from '../types.ts'

/** A scripted chain: blocks are hashes; a fork replaces blocks from a height on. */
class ScriptedChain implements DepositSource {
  readonly chain = 'evm-1'
  blocks: string[] = ['g']
  byBlock = new Map<string, { key: string; amount: bigint }[]>()
  #n = 0

  mine(deposit?: { key: string; amount: bigint }): string {
    const hash = `b${++this.#n}`
    this.blocks.push(hash)
    if (deposit) this.byBlock.set(hash, [deposit])
    return hash
  }

  fork(height: number): void {
    this.blocks = this.blocks.slice(0, height)
  }

  async tip(): Promise<BlockPoint> {
    return { height: BigInt(this.blocks.length - 1), hash: this.blocks.at(-1)! }
  }

  async blockHash(height: bigint): Promise<string | undefined> {
    return this.blocks[Number(height)]
  }

  async deposits(from: bigint, to: bigint): Promise<ObservedDeposit[]> {
    const out: ObservedDeposit[] = []
    for (let h = Number(from); h <= Number(to) && h < this.blocks.length; h++) {
      const hash = this.blocks[h]!
      for (const [i, d] of (this.byBlock.get(hash) ?? []).entries()) {
        out.push({ ref: externalRef({ chain: this.chain, txHash: `0x${hash.padStart(64, '0').replace(/[^0-9a-f]/g, 'e')}`, index: i }), accountKey: d.key, amount: d.amount, block: { height: BigInt(h), hash } })
      }
    }
    return out
  }
}

t.test('a deposit is handed out exactly once, when the tip gives it the depth', async (t) => {
  const chain = new ScriptedChain()
  const tracker = new ConfirmationTracker({ source: chain, depth: 3, startHeight: 1n })
  chain.mine({ key: 'a', amount: 5n })
  t.same((await tracker.poll()).confirmed, [])
  chain.mine()
  t.same((await tracker.poll()).confirmed, [])
  chain.mine()
  const p = await tracker.poll()
  t.equal(p.confirmed.length, 1)
  t.equal(p.confirmed[0]?.amount, 5n)
  chain.mine()
  t.same((await tracker.poll()).confirmed, [], 'not again')
})

t.test('a reorganisation shallower than the depth drops the pending deposit and credits nothing', async (t) => {
  const chain = new ScriptedChain()
  const tracker = new ConfirmationTracker({ source: chain, depth: 3 })
  chain.mine()
  chain.mine({ key: 'a', amount: 5n })
  const first = await tracker.poll()
  t.equal(first.pending.length, 1)
  chain.fork(2) // the deposit's block is gone
  for (let i = 0; i < 5; i++) chain.mine()
  const after = await tracker.poll()
  t.same(after.confirmed, [])
  t.same(after.dropped, [first.pending[0]?.ref])
})

t.test('a reorganisation below the credited cursor stops the tracker with DeepReorgError', async (t) => {
  const chain = new ScriptedChain()
  const tracker = new ConfirmationTracker({ source: chain, depth: 2 })
  for (let i = 0; i < 5; i++) chain.mine()
  await tracker.poll()
  chain.fork(2)
  for (let i = 0; i < 6; i++) chain.mine({ key: 'b', amount: 1n })
  await t.rejects(tracker.poll(), DeepReorgError)
  await t.rejects(tracker.poll(), DeepReorgError, 'and stays stopped')
})

t.test('a depth below 1 is refused', async (t) => {
  t.throws(() => new ConfirmationTracker({ source: new ScriptedChain(), depth: 0 }), RangeError)
})
