// Every failure the ledger reports, one class each, with a stable `name` and `code` and the HTTP status a
// local API answers with. Callers branch on the class or `name`, never on message text. A refused transfer
// also carries its result code (TigerBeetle's vocabulary, spec/ledger.md "Results") and, where one field is
// at fault, that field's name.

export class LedgerError extends Error {
  override readonly name: string = 'LedgerError'
  readonly code: string = 'ERR_LEDGER'
  readonly status: number = 500
  readonly data: Record<string, unknown> | undefined
  constructor(message: string, data?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options)
    this.data = data
  }
}

/** An amount that is not a whole number of the smallest unit in [1, 2^128 - 1] (negative, float, text, too big). */
export class InvalidAmountError extends LedgerError {
  override readonly name = 'InvalidAmountError'
  override readonly code = 'ERR_INVALID_AMOUNT'
  override readonly status = 400
}

/** A transfer or account refused; `data.result` is its result code and `data.field` the field at fault, if one. */
export class TransferRefusedError extends LedgerError {
  override readonly name: string = 'TransferRefusedError'
  override readonly code = 'ERR_TRANSFER_REFUSED'
  override readonly status: number = 409
  readonly result: string
  readonly field: string | undefined
  constructor(message: string, result: string, field?: string, status?: number) {
    super(message, { result, ...(field ? { field } : {}) })
    this.result = result
    this.field = field
    if (status !== undefined) this.status = status
  }
}

/** The same id (transfer, account or top-up reference) was used before with other fields: names the field. */
export class IdempotencyConflictError extends TransferRefusedError {
  override readonly name = 'IdempotencyConflictError'
}

/** The store could not be written or read: the ledger closes itself (nothing after the failure is acknowledged). */
export class LedgerStorageError extends LedgerError {
  override readonly name = 'LedgerStorageError'
  override readonly code = 'ERR_LEDGER_STORAGE'
}

/** The ledger was closed (or failed and closed itself). */
export class LedgerClosedError extends LedgerError {
  override readonly name = 'LedgerClosedError'
  override readonly code = 'ERR_LEDGER_CLOSED'
  override readonly status = 503
}

/** A stored or supplied log entry that is not a well-formed canonical entry. */
export class MalformedEntryError extends LedgerError {
  override readonly name = 'MalformedEntryError'
  override readonly code = 'ERR_MALFORMED_ENTRY'
  override readonly status = 400
}

/** No such log entry or checkpoint. */
export class EntryNotFoundError extends LedgerError {
  override readonly name = 'EntryNotFoundError'
  override readonly code = 'ERR_ENTRY_NOT_FOUND'
  override readonly status = 404
}

/** An inclusion or consistency proof, or a proof document, that does not verify. */
export class InvalidProofError extends LedgerError {
  override readonly name = 'InvalidProofError'
  override readonly code = 'ERR_INVALID_PROOF'
  override readonly status = 400
}

/** A checkpoint or cosignature that is malformed or whose signature does not verify for the DID it names. */
export class InvalidCheckpointError extends LedgerError {
  override readonly name = 'InvalidCheckpointError'
  override readonly code = 'ERR_INVALID_CHECKPOINT'
  override readonly status = 400
}
