// One run of a workload on one named node, through the market like any paid run (spec/trust.md "Check
// runs"): a signed bid request asked of that node, a contract proposed on its bid and countersigned, a start,
// then the run's end as its report says, its stdout read back, the contract stopped. What the provider sees
// is the messages of paid work: a replica of a paid job carries the job's own deployment id, slot and
// workload; a validation task is a job like any other. The trust service uses it for replicas, the run that
// decides, and validation tasks.
import { certifiedOwner } from '../../actors/placement/node-certificate.ts'
import { checkBid, signBidRequest, verifyBidSignature, type SignedBid } from '../../actors/bidding/messages.ts'
import { proposeContract, verifyContract, workloadDigest, type Contract } from '../../actors/contracts/contract.ts'
import { MarketBehavior } from '../../actors/orchestrator/protocol.ts'
import type { ReplicaReport } from '../../actors/provider/contract-machine.ts'
import type { LogEntry } from '../../actors/provider/ports.ts'
import type { Workload } from '../../actors/workload/workload.ts'
import type { NodeKey } from '../../identity/keys.ts'
import { outputDigest } from '../../trust/digest.ts'

/** Paying a check run as any replica is paid (the orchestrator's consumer side: spec/trust.md "Paid check runs"). */
export interface CheckRunPayment {
  proposed(signed: Contract): Promise<void>
  observed(o: { contractId: string; deploymentId: string; running?: number; ended?: number }): void
  ended(contractId: string, why: string): Promise<void>
}

export interface CheckRunPorts {
  key: NodeKey
  askMarket(did: string, behavior: string, body: unknown, timeoutMs: number): Promise<unknown>
  now(): number
  /** Absent (no orchestrator, unit tests): runs are not paid. */
  payment?(): CheckRunPayment | undefined
}

export interface CheckRunTarget {
  node: string
  workload: Workload
  deploymentId: string
  slot: string
  epoch: number
}

export type CheckRunOutcome =
  /** The run ended: its digest (`null`: accepted and no result by the deadline, a dropped run). */
  | { kind: 'result'; node: string; owner: string; digest: string | null; contractId: string; /** The run's stdout (when it ended). */ stdout?: string[] }
  /** The node did not take the run (a decline, a refused proposal or start, a run stopped by someone else): no verdict. */
  | { kind: 'refused'; node: string; owner: string | null; reason: string }

const errorText = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err))

export class CheckRuns {
  readonly #p: CheckRunPorts
  readonly #deadlineMs: number
  readonly #pending = new Map<string, (r: ReplicaReport) => void>()

  constructor(ports: CheckRunPorts, o: { deadlineMs: number }) {
    this.#p = ports
    this.#deadlineMs = o.deadlineMs
  }

  /** A report of one of these runs: taken (true) and not routed to any deployment; observed for its payment. */
  report(r: ReplicaReport): boolean {
    const done = this.#pending.get(r.contractId)
    if (!done) return false
    const pay = this.#p.payment?.()
    if (r.state === 'running') pay?.observed({ contractId: r.contractId, deploymentId: r.deploymentId, running: this.#p.now() })
    if (r.state === 'exited' || r.state === 'failed' || r.state === 'stopped') {
      pay?.observed({ contractId: r.contractId, deploymentId: r.deploymentId, ended: this.#p.now() })
      done(r)
    }
    return true
  }

  get inFlight(): number {
    return this.#pending.size
  }

  /** The bid of `node` for `w` (its owner and price), or why it gave none. */
  async bid(node: string, t: Omit<CheckRunTarget, 'node' | 'slot' | 'epoch'>): Promise<{ bid: SignedBid } | { refused: string }> {
    const req = signBidRequest(this.#p.key, { deploymentId: t.deploymentId, workload: t.workload, count: 1, ttlMs: 15_000, now: this.#p.now() })
    try {
      const answer = (await this.#p.askMarket(node, MarketBehavior.bid, req, 5000)) as { bid?: SignedBid; decline?: unknown }
      if (!answer?.bid) return { refused: 'declined' }
      const body = checkBid(answer.bid, { requestId: req.body.id, now: this.#p.now() })
      if (body.node !== node) return { refused: 'a bid naming another node' }
      verifyBidSignature(body, answer.bid.sig)
      return { bid: answer.bid }
    } catch (err) {
      return { refused: errorText(err) }
    }
  }

  /** Runs `t.workload` once on `t.node` (with its bid, asked first when not given). */
  async run(t: CheckRunTarget, given?: SignedBid): Promise<CheckRunOutcome> {
    const got = given ? { bid: given } : await this.bid(t.node, t)
    if ('refused' in got) return { kind: 'refused', node: t.node, owner: null, reason: got.refused }
    const bid = got.bid.body
    // the owner its certificate proves (spec/trust.md "Owner certification"): an uncertified claim is no owner
    const owner = certifiedOwner(bid)
    const w = t.workload
    let contractId: string | undefined
    try {
      const proposal = proposeContract(this.#p.key, {
        deploymentId: t.deploymentId, workloadName: w.name, kind: w.kind, slot: t.slot, epoch: t.epoch, provider: t.node, providerOwner: owner,
        bidId: bid.id, resources: w.resources, pricePerHour: bid.pricePerHour, lane: w.lane, role: 'replica', durationSeconds: w.leaseSeconds,
        workloadDigest: workloadDigest(w), now: this.#p.now(),
      })
      const signed = await this.#p.askMarket(t.node, MarketBehavior.propose, { contract: proposal, workload: w }, 10_000)
      const terms = verifyContract(signed)
      if (terms.id !== proposal.terms.id || terms.provider !== t.node) return { kind: 'refused', node: t.node, owner, reason: 'countersigned contract differs from the proposal' }
      const id = (contractId = terms.id)
      // paid like any replica: kept as this node's contract, its first window held before the start
      const pay = this.#p.payment?.()
      if (pay) {
        try {
          await pay.proposed(signed as Contract)
        } catch (err) {
          return { kind: 'refused', node: t.node, owner, reason: `not paid for: ${errorText(err)}` }
        }
      }
      const ended = new Promise<ReplicaReport | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), this.#deadlineMs)
        timer.unref()
        this.#pending.set(id, (r) => {
          clearTimeout(timer)
          resolve(r)
        })
      })
      // the lease of a long run is renewed as the consumer of a paid one would
      const renew = setInterval(() => void this.#p.askMarket(t.node, MarketBehavior.renew, { contracts: [id] }, 5000).catch(() => {}), 10_000)
      renew.unref()
      try {
        await this.#p.askMarket(t.node, MarketBehavior.start, { contractId: id }, 10_000)
        const r = await ended
        // no end by the deadline: accepted and not done (a dropped run)
        if (r === null) return { kind: 'result', node: t.node, owner, digest: null, contractId: id }
        if (typeof r.code !== 'number') return { kind: 'refused', node: t.node, owner, reason: `the run ended ${r.state} without an exit code${r.reason ? ` (${r.reason})` : ''}` }
        const stdout = await this.stdout(t.node, id)
        return { kind: 'result', node: t.node, owner, digest: outputDigest(r.code, stdout), contractId: id, stdout }
      } finally {
        clearInterval(renew)
      }
    } catch (err) {
      return { kind: 'refused', node: t.node, owner, reason: errorText(err) }
    } finally {
      if (contractId !== undefined) {
        this.#pending.delete(contractId)
        await this.#p.askMarket(t.node, MarketBehavior.stop, { contractId }, 15_000).catch(() => {})
        const pay = this.#p.payment?.()
        pay?.observed({ contractId, deploymentId: t.deploymentId, ended: this.#p.now() })
        await pay?.ended(contractId, 'check run done').catch(() => {})
      }
    }
  }

  /** The stdout lines of a contract's run on `node`, read over the mesh (every page). */
  async stdout(node: string, contractId: string): Promise<string[]> {
    const out: string[] = []
    let since = 0
    for (let page = 0; page < 100; page++) {
      const r = (await this.#p.askMarket(node, MarketBehavior.logs, { contractId, since, limit: 1000 }, 5000)) as { lines: LogEntry[]; ended: boolean }
      for (const l of r.lines) if (l.stream === 'stdout') out.push(l.line)
      if (r.lines.length < 1000) break
      since = r.lines[r.lines.length - 1]!.ts
    }
    return out
  }
}
