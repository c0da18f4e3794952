// The end of a stop, shared by the executors: after the polite signal, wait for the instance's exit for at
// most the grace period; if it has not ended by then, `kill` it. Resolves whether it had to be killed.
export async function killAfterGrace(exit: Promise<unknown>, graceMs: number, kill: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const graceOver = new Promise<'grace'>((r) => {
    timer = setTimeout(() => r('grace'), Math.max(0, graceMs))
  })
  const first = await Promise.race([exit.then(() => 'exit' as const), graceOver])
  clearTimeout(timer)
  if (first === 'exit') return false
  await kill()
  return true
}
