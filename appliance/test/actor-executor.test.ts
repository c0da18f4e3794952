// The actor executor passes the Executor compliance suite: each scenario is an SDK actor bundle
// (appliance/test/fixtures/actor/compliance.ts) in a Node child process under the permission model.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { runExecutorCompliance } from './executor-compliance.ts'
import { ActorExecutor } from '../executor/actor/index.ts'
import type { ExecSpec } from '../executor/executor.ts'

const bundle = fileURLToPath(new URL('./fixtures/actor/compliance.ts', import.meta.url))

runExecutorCompliance(t, {
  executor: new ActorExecutor(),
  makeSpec: (scenario, ctx): ExecSpec => ({
    ...ctx,
    env: { ...ctx.env, COMPLIANCE_SCENARIO: scenario },
    runtime: { kind: 'actor', bundle },
    limits: { cpu: 1, memoryBytes: 256 * 1024 * 1024 },
    network: 'none',
  }),
})
