// The repository runs its TypeScript sources directly; an installed package runs the JavaScript that
// `npm run build` emits into dist/ (spec/packaging.md). Code that starts another module by its file (a
// worker thread, a child process, a loader hook) names it as a source file; this turns that name into the
// file that exists beside the caller, whichever of the two it runs as.

/** The URL of `relative` (written with a `.ts` extension) beside the module at `metaUrl`, as `.js` when that module is built JavaScript. */
export function siblingModule(metaUrl: string, relative: string): URL {
  return new URL(runsBuilt(metaUrl) ? relative.replace(/\.ts$/, '.js') : relative, metaUrl)
}

/** True when the calling module runs as built JavaScript (dist/), not from the TypeScript sources. */
export function runsBuilt(metaUrl: string): boolean {
  return new URL(metaUrl).pathname.endsWith('.js')
}
