// Preloaded in the sandbox (`node --import`): native addons are refused there (no --allow-addons), but
// identity/ and core/ import `level` (a native addon) at module load for their disk stores. The sandboxed
// actor never uses those stores, so `level` resolves to a stub that throws a clear error if constructed.
import { registerHooks } from 'node:module'

const stub =
  'data:text/javascript,' +
  encodeURIComponent(
    "export class Level { constructor() { const e = new Error('level (a native addon) is not available inside the actor sandbox'); e.code = 'ERR_ACCESS_DENIED'; e.permission = 'Addon'; e.resource = 'level'; throw e } }",
  )

registerHooks({
  resolve(specifier, context, next) {
    if (specifier === 'level' || specifier === 'classic-level') return { url: stub, format: 'module', shortCircuit: true }
    return next(specifier, context)
  },
})
