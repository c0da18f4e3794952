// Issue 25, must show: kill -9 of the orchestrator at each step boundary of a placement (spec/failpoints.md),
// then a restart: the acknowledged create is kept (a retry with its key answers the same deployment), the
// deployment reaches two running replicas and its standby, nothing is orphaned or doubled, and after its stop
// nothing of it is left anywhere. Four real daemons and Docker (chaos/crash-steps.ts).
import t from 'tap'
import { walk } from './crash-walk.ts'

await walk(t, (c) => c.phase === 'placement' && c.role === 'orchestrator')
