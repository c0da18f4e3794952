// A daemon's `metrics` section as an operator gets it wrong (spec/observability.md "Config"): a public address
// without `exposed`, or a port another process holds, stops the daemon at start with a typed error naming
// the problem (it does not run without the metrics it was told to serve, nor serve them where it was not told).
import t from 'tap'
import { createServer } from 'node:net'
import { DaemonCluster } from '../../scripts/testing/daemons.ts'

t.test('a bad metrics section stops the daemon at start, with a typed error', async (t) => {
  const cluster = new DaemonCluster()
  t.teardown(() => cluster.cleanup())
  const refused = await cluster.start({ config: { metrics: { listen: '0.0.0.0:9464' } } as never, emptyWallet: true }).then(() => 'started', (err: Error) => err.message)
  t.match(refused, /ConfigError: config\.json: 'metrics\.listen' 0\.0\.0\.0 is not a loopback address/, 'a public address without exposed is refused')
  const holder = createServer()
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => holder.close(() => r())))
  const port = (holder.address() as { port: number }).port
  const busy = await cluster.start({ config: { metrics: { listen: `127.0.0.1:${port}` } } as never, emptyWallet: true }).then(() => 'started', (err: Error) => err.message)
  t.match(busy, new RegExp(`MetricsListenError: metrics endpoint cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`), 'a port in use is named')
  const fine = await cluster.start({ config: { metrics: { listen: '127.0.0.1:0' } } as never, emptyWallet: true })
  const status = await fine.api.get<{ services: { metrics: { scrape: string } } }>('/v1/status')
  t.match(status.services.metrics.scrape, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, 'port 0: an ephemeral port, named in the status')
  t.equal((await fetch(status.services.metrics.scrape)).status, 200)
})
