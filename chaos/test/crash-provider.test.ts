// Issue 25, must show: kill -9 of a provider at each step boundary of placement (reserve, start), and of the
// standby at each boundary of its promotion in a failover (provider start): the orchestrator moves on, the
// deployment settles with two replicas and a standby, whatever the dead node held ends with its lease, and
// after the stop nothing is left (spec/failpoints.md, chaos/crash-steps.ts).
import t from 'tap'
import { walk } from './crash-walk.ts'

await walk(t, (c) => c.role !== 'orchestrator' && c.phase !== 'stop')
