// Preloaded in the sandbox (`node --import`): native addons are refused there (no --allow-addons), but
// identity/ and core/ import `level` (a native addon) at module load for their disk stores. The sandboxed
// actor never uses those stores, so `level` resolves to a stub that throws a clear error if constructed.
import { registerHooks } from 'node:module'
import { runsBuilt } from '../../../core/module-url.ts'

const stub =
  'data:text/javascript,' +
  encodeURIComponent(
    "export class Level { constructor() { const e = new Error('level (a native addon) is not available inside the actor sandbox'); e.code = 'ERR_ACCESS_DENIED'; e.permission = 'Addon'; e.resource = 'level'; throw e } }",
  )

// An actor bundle that arrived as an artifact (spec/artifacts.md "Actor bundles") imports the SDK as
// `noir:runtime/core/...` or `noir:runtime/identity/...`: this runtime's own copy, nothing else. Its bare
// imports (`xstate`) resolve from this runtime's packages, since the bundle's folder has none.
const runtimeRoot = new URL('../../../', import.meta.url)
const BUILT = runsBuilt(import.meta.url)
const RUNTIME_SPEC = /^noir:runtime\/((?:core|identity)\/(?:[A-Za-z0-9_-]+\/)*[A-Za-z0-9_.-]+\.ts)$/

registerHooks({
  resolve(specifier, context, next) {
    if (specifier === 'level' || specifier === 'classic-level') return { url: stub, format: 'module', shortCircuit: true }
    if (specifier.startsWith('noir:runtime/')) {
      const m = RUNTIME_SPEC.exec(specifier)
      if (!m || m[1]!.split('/').some((s) => s === '..' || s === '.')) throw Object.assign(new Error(`${specifier} is not a module of the runtime (noir:runtime/core/... or noir:runtime/identity/...)`), { code: 'ERR_MODULE_NOT_FOUND' })
      // the runtime runs from its sources (.ts) in the repository, as built JavaScript (.js) when installed
      return next(new URL(BUILT ? m[1]!.replace(/\.ts$/, '.js') : m[1]!, runtimeRoot).href, context)
    }
    try {
      return next(specifier, context)
    } catch (err) {
      const bare = !specifier.startsWith('.') && !specifier.startsWith('/') && !specifier.includes(':')
      if (!bare || (err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err
      return next(specifier, { ...context, parentURL: import.meta.url })
    }
  },
})
