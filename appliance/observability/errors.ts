// Typed errors of the observability endpoints (spec/observability.md).
import { DaemonError } from '../daemon/errors.ts'

/** The metrics endpoint cannot listen where config.json `metrics.listen` says (address in use, not local). */
export class MetricsListenError extends DaemonError {
  override readonly name = 'MetricsListenError'
  override readonly code = 'ERR_METRICS_LISTEN'
}
