// Moving between pages without a reload, and what a page must close when the user leaves it; main.ts draws
// the page on the 'noir:navigate' event (kept apart so the pages do not import the router).
let leave: (() => void) | undefined

export function go(path: string, replace = false): void {
  if (replace) history.replaceState(null, '', path)
  else history.pushState(null, '', path)
  dispatchEvent(new Event('noir:navigate'))
}

/** A page that keeps something open (a log stream, a timer) says how to close it when the user leaves. */
export function onLeave(fn: () => void): void {
  const before = leave
  leave = () => {
    before?.()
    fn()
  }
}

export function leavePage(): void {
  const fn = leave
  leave = undefined
  fn?.()
}
