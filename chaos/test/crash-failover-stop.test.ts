// Issue 25, must show: kill -9 of the orchestrator at each boundary of a failover (repair) and of a stop
// (release), and of a provider at each boundary of its stop: after a restart the failover or the stop is
// carried through, nothing runs twice, and after the stop nothing of the deployment is left anywhere; what a
// dead provider kept running ends with its lease (spec/failpoints.md, chaos/crash-steps.ts).
import t from 'tap'
import { walk } from './crash-walk.ts'

await walk(t, (c) => (c.phase === 'failover' && c.role === 'orchestrator') || c.phase === 'stop')
