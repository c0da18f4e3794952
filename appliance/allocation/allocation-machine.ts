// The lifecycle of one workload instance as an XState machine:
//
//   pending -> starting -> running -> stopping -> stopped
//                 |           |
//                 |           +-> exited(code)  (ended by itself, reason exited)
//                 |           +-> failed(reason) (oom, cpu-time, error, killed from outside)
//                 +-> failed(reason)              (could not be prepared or started)
//   running / starting -> backoff -> starting     (restart policy: always | on-failure, with backoff and a limit)
//   running -> relaunching -> starting             (RESTART: asked to start again, e.g. a rotated secret)
//
// The machine's context is plain data (serializable snapshot); the executor calls are injected as promise
// actors by `allocationMachine(deps)`. `ATTACH` (instead of `START`) enters `running` with an existing handle:
// that is how a restarted daemon re-attaches to a container that kept running.
import { assign, fromPromise, setup } from 'xstate'
import type { ExecHandle, ExecSpec, ExitStatus } from '../executor/executor.ts'

export type RestartPolicyName = 'always' | 'on-failure' | 'never'

export interface RestartPolicy {
  policy: RestartPolicyName
  /** Restarts allowed in total before the allocation is left failed/exited. Default 5. */
  maxRestarts: number
  /** First backoff delay; doubled after each restart up to maxBackoffMs. */
  backoffMs: number
  maxBackoffMs: number
}

export const defaultRestart: RestartPolicy = { policy: 'never', maxRestarts: 5, backoffMs: 500, maxBackoffMs: 30_000 }

export type AllocationState = 'pending' | 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped' | 'exited' | 'failed'
export const finalStates: readonly AllocationState[] = ['stopped', 'exited', 'failed']

export interface AllocationContext {
  allocationId: string
  spec: ExecSpec
  restart: RestartPolicy
  graceMs: number
  handle: ExecHandle | null
  restarts: number
  lastExit: ExitStatus | null
  /** Why it failed (for `failed`). */
  reason: string | null
  startedAt: number | null
  /** A stop arrived while launching: stop what was started as soon as the launch finishes. */
  stopRequested: boolean
}

export interface AllocationInput {
  allocationId: string
  spec: ExecSpec
  restart?: Partial<RestartPolicy>
  graceMs?: number
  /** Restarts already used (kept across a daemon restart). */
  restarts?: number
}

export type AllocationEvent =
  | { type: 'START' }
  | { type: 'ATTACH'; handle: ExecHandle }
  | { type: 'STOP'; graceMs?: number }
  /** Stop the running instance and launch it again (a rotated secret); not counted as a restart of the policy. */
  | { type: 'RESTART' }

/** The executor operations the machine performs (the executor behind them is the allocation's kind). */
export interface AllocationDeps {
  /** Prepares (removing `previous` first, if any) and starts; resolves with the running instance's handle. */
  launch(spec: ExecSpec, previous: ExecHandle | null): Promise<ExecHandle>
  wait(handle: ExecHandle): Promise<ExitStatus>
  stop(handle: ExecHandle, graceMs: number): Promise<ExitStatus>
  /** Called on entry to every state with the context as it is then (status publishing). */
  report?(state: AllocationState, context: AllocationContext): void
}

/** Whether the policy restarts an instance that ended with `exit` after `restarts` restarts. */
export function shouldRestart(r: RestartPolicy, exit: ExitStatus, restarts: number): boolean {
  if (restarts >= r.maxRestarts) return false
  if (r.policy === 'always') return true
  if (r.policy === 'on-failure') return !(exit.reason === 'exited' && exit.code === 0)
  return false
}

export function backoffDelay(r: RestartPolicy, restarts: number): number {
  return Math.min(r.maxBackoffMs, r.backoffMs * 2 ** restarts)
}

const failureOf = (e: ExitStatus): string => (e.reason === 'oom' ? 'oom' : e.reason === 'cpu-time' ? 'cpu-time' : e.reason === 'killed' ? 'killed' : e.message ?? e.reason)
const errorText = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err))

export function allocationMachine(deps: AllocationDeps) {
  return setup({
    types: {
      context: {} as AllocationContext,
      events: {} as AllocationEvent,
      input: {} as AllocationInput,
    },
    actors: {
      launch: fromPromise<ExecHandle, { spec: ExecSpec; previous: ExecHandle | null }>(({ input }) => deps.launch(input.spec, input.previous)),
      waitExit: fromPromise<ExitStatus, { handle: ExecHandle }>(({ input }) => deps.wait(input.handle)),
      stopInstance: fromPromise<ExitStatus, { handle: ExecHandle; graceMs: number }>(({ input }) => deps.stop(input.handle, input.graceMs)),
    },
    actions: {
      report: ({ context }, params: { state: AllocationState }) => deps.report?.(params.state, context),
    },
    guards: {
      restartAfterExit: ({ context }, exit: ExitStatus) => shouldRestart(context.restart, exit, context.restarts),
      restartAfterLaunchError: ({ context }) =>
        context.restart.policy !== 'never' && context.restarts < context.restart.maxRestarts,
      endedCleanly: (_, exit: ExitStatus) => exit.reason === 'exited',
    },
    delays: {
      backoff: ({ context }) => backoffDelay(context.restart, context.restarts - 1),
    },
  }).createMachine({
    id: 'allocation',
    context: ({ input }) => ({
      allocationId: input.allocationId,
      spec: input.spec,
      restart: { ...defaultRestart, ...input.restart },
      graceMs: input.graceMs ?? 10_000,
      handle: null,
      restarts: input.restarts ?? 0,
      lastExit: null,
      reason: null,
      startedAt: null,
      stopRequested: false,
    }),
    initial: 'pending',
    states: {
      pending: {
        entry: { type: 'report', params: { state: 'pending' } },
        on: {
          START: 'starting',
          ATTACH: { target: 'running', actions: assign({ handle: ({ event }) => event.handle, startedAt: () => Date.now() }) },
          STOP: 'stopped',
        },
      },
      starting: {
        entry: { type: 'report', params: { state: 'starting' } },
        invoke: {
          src: 'launch',
          input: ({ context }) => ({ spec: context.spec, previous: context.handle }),
          onDone: [
            { guard: ({ context }) => context.stopRequested, target: 'stopping', actions: assign({ handle: ({ event }) => event.output }) },
            { target: 'running', actions: assign({ handle: ({ event }) => event.output, startedAt: () => Date.now() }) },
          ],
          onError: [
            { guard: ({ context }) => context.stopRequested, target: 'stopped' },
            { guard: 'restartAfterLaunchError', target: 'backoff', actions: assign({ reason: ({ event }) => errorText(event.error), restarts: ({ context }) => context.restarts + 1 }) },
            { target: 'failed', actions: assign({ reason: ({ event }) => errorText(event.error) }) },
          ],
        },
        // A stop during the launch waits for it to finish, then stops what was started.
        on: { STOP: { actions: assign({ stopRequested: true, graceMs: ({ context, event }) => event.graceMs ?? context.graceMs }) } },
      },
      running: {
        entry: { type: 'report', params: { state: 'running' } },
        always: { guard: ({ context }) => context.handle === null, target: 'failed' },
        invoke: {
          src: 'waitExit',
          input: ({ context }) => ({ handle: context.handle! }),
          onDone: [
            {
              guard: { type: 'restartAfterExit', params: ({ event }) => event.output },
              target: 'backoff',
              actions: assign({ lastExit: ({ event }) => event.output, restarts: ({ context }) => context.restarts + 1 }),
            },
            { guard: { type: 'endedCleanly', params: ({ event }) => event.output }, target: 'exited', actions: assign({ lastExit: ({ event }) => event.output }) },
            { target: 'failed', actions: assign({ lastExit: ({ event }) => event.output, reason: ({ event }) => failureOf(event.output) }) },
          ],
          onError: { target: 'failed', actions: assign({ reason: ({ event }) => errorText(event.error) }) },
        },
        on: {
          STOP: { target: 'stopping', actions: assign({ graceMs: ({ context, event }) => event.graceMs ?? context.graceMs }) },
          RESTART: 'relaunching',
        },
      },
      // asked to start again (a rotated secret): the instance is stopped, then launched anew (launch removes it)
      relaunching: {
        entry: { type: 'report', params: { state: 'starting' } },
        invoke: {
          src: 'stopInstance',
          input: ({ context }) => ({ handle: context.handle!, graceMs: context.graceMs }),
          onDone: [
            { guard: ({ context }) => context.stopRequested, target: 'stopped', actions: assign({ lastExit: ({ event }) => event.output }) },
            { target: 'starting', actions: assign({ lastExit: ({ event }) => event.output }) },
          ],
          onError: { target: 'failed', actions: assign({ reason: ({ event }) => errorText(event.error) }) },
        },
        on: { STOP: { actions: assign({ stopRequested: true }) } },
      },
      backoff: {
        entry: { type: 'report', params: { state: 'backoff' } },
        after: { backoff: 'starting' },
        on: { STOP: 'stopped' },
      },
      stopping: {
        entry: { type: 'report', params: { state: 'stopping' } },
        invoke: {
          src: 'stopInstance',
          input: ({ context }) => ({ handle: context.handle!, graceMs: context.graceMs }),
          onDone: { target: 'stopped', actions: assign({ lastExit: ({ event }) => event.output }) },
          onError: { target: 'failed', actions: assign({ reason: ({ event }) => errorText(event.error) }) },
        },
      },
      stopped: { type: 'final', entry: { type: 'report', params: { state: 'stopped' } } },
      exited: { type: 'final', entry: { type: 'report', params: { state: 'exited' } } },
      failed: { type: 'final', entry: { type: 'report', params: { state: 'failed' } } },
    },
  })
}

export type AllocationMachine = ReturnType<typeof allocationMachine>
