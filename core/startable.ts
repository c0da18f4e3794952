// Components with a lifecycle, as in js-libp2p's interface package: a node starts and stops them together.
export interface Startable {
  start(): Promise<void> | void
  stop(): Promise<void> | void
}

/** Starts components in order; on a failure stops the ones already started (in reverse) and rethrows. */
export async function startAll(components: readonly Startable[]): Promise<void> {
  const started: Startable[] = []
  try {
    for (const c of components) {
      await c.start()
      started.push(c)
    }
  } catch (err) {
    await stopAll(started)
    throw err
  }
}

/** Stops components in reverse order; every stop runs even if an earlier one throws (the first error wins). */
export async function stopAll(components: readonly Startable[]): Promise<void> {
  let first: unknown
  for (const c of [...components].reverse()) {
    try {
      await c.stop()
    } catch (err) {
      first ??= err
    }
  }
  if (first !== undefined) throw first
}
