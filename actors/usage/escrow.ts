// What metering needs from the node's own ledger, as ports (actors/ never imports ledger/ internals; the
// appliance implements them over its Ledger: appliance/node-services/ledger-escrow.ts). Amounts in µNLC.
//
// Consumer side, Escrow: each window of a contract is its own pending transfer with a deterministic id
// (`escrow:<contractId>:<window>`), so a retry after a crash is a replay, never a second hold.
// Provider side, Earnings: an answered record's accepted amount, credited once per (contract, seq).

export interface Escrow {
  /** µNLC the wallet could hold now (posted minus held). */
  available(): bigint
  /** Holds `amount` for window `window` of a contract (idempotent); InsufficientFundsError when the wallet cannot. */
  hold(contractId: string, window: number, amount: bigint, timeoutSeconds: number): Promise<void>
  /**
   * Pays `amount` out of window `window`'s hold (a post in part releases the rest; 0 voids it). `paid`: moved;
   * `unpaid`: the hold had ended (expired) and the wallet could not pay it directly; `nothing`: nothing to pay.
   */
  settle(contractId: string, window: number, amount: bigint): Promise<'paid' | 'unpaid' | 'nothing'>
  /** Releases window `window`'s hold if it is still open (idempotent). */
  release(contractId: string, window: number): Promise<void>
}

export interface Earnings {
  /** Credits what a consumer accepted of record `seq` of a contract (idempotent per contract and seq). */
  credit(contractId: string, seq: number, amount: bigint): Promise<void>
}
