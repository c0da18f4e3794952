// config.json `metrics` and `tracing`: checked strictly (unknown fields, names instead of IP literals, a public
// address without `exposed`, credentials in an OTLP URL are all refused with a ConfigError naming the field).
import t from 'tap'
import { logsConfig, metricsConfig, tracingConfig } from '../observability/config.ts'
import { ConfigError } from '../daemon/errors.ts'

t.test('metrics: off unless configured, loopback unless exposed', async (t) => {
  t.equal(metricsConfig(undefined), undefined, 'absent: no endpoint')
  t.same(metricsConfig({ listen: '127.0.0.1:9464' }), { host: '127.0.0.1', port: 9464 })
  t.same(metricsConfig({ listen: '[::1]:0' }), { host: '::1', port: 0 })
  t.same(metricsConfig({ listen: '10.0.0.5:9464', exposed: true }), { host: '10.0.0.5', port: 9464 })
  const bad: [unknown, RegExp][] = [
    [{ listen: '0.0.0.0:9464' }, /not a loopback address.*exposed/],
    [{ listen: '10.0.0.5:9464', exposed: 'yes' }, /'metrics.exposed' must be true or false/],
    [{ listen: 'localhost:9464' }, /IP:PORT/],
    [{ listen: '127.0.0.1' }, /IP:PORT/],
    [{ listen: '127.0.0.1:70000' }, /not a port number/],
    [{ listen: '999.1.1.1:9464' }, /not an IP address/],
    [{ listen: 9464 }, /IP:PORT/],
    [{ listen: '127.0.0.1:9464', path: '/x' }, /'metrics.path' is not a known field/],
    [['127.0.0.1:9464'], /'metrics' must be an object/],
    ['127.0.0.1:9464', /'metrics' must be an object/],
  ]
  for (const [v, re] of bad) t.throws(() => metricsConfig(v), { name: 'ConfigError', message: re }, JSON.stringify(v))
  t.throws(() => metricsConfig({ listen: 'x' }), ConfigError)
})

t.test('tracing: an http(s) OTLP endpoint, no credentials in it, bounded batching', async (t) => {
  t.equal(tracingConfig(undefined), undefined)
  t.same(tracingConfig({ otlp: 'http://127.0.0.1:4318/v1/traces' }), { otlp: 'http://127.0.0.1:4318/v1/traces', sampleRatio: 1, batchSize: 512, flushMs: 1000 })
  t.same(tracingConfig({ otlp: 'https://otel.example/v1/traces', sampleRatio: 0.25, batchSize: 10, flushMs: 50 })!.sampleRatio, 0.25)
  const bad: [unknown, RegExp][] = [
    [{ otlp: 'file:///etc/passwd' }, /http\(s\) URL/],
    [{ otlp: 'not a url' }, /http\(s\) URL/],
    [{ otlp: 'http://user:secret@127.0.0.1:4318/v1/traces' }, /credentials/],
    [{ otlp: 'http://127.0.0.1:4318', sampleRatio: 2 }, /sampleRatio/],
    [{ otlp: 'http://127.0.0.1:4318', sampleRatio: Number.NaN }, /sampleRatio/],
    [{ otlp: 'http://127.0.0.1:4318', batchSize: 0 }, /batchSize/],
    [{ otlp: 'http://127.0.0.1:4318', flushMs: 1 }, /flushMs/],
    [{ otlp: 'http://127.0.0.1:4318', headers: {} }, /'tracing.headers' is not a known field/],
    [{}, /http\(s\) URL/],
  ]
  for (const [v, re] of bad) t.throws(() => tracingConfig(v), { name: 'ConfigError', message: re }, JSON.stringify(v))
})

t.test('logs: bounded by default, strict when set', async (t) => {
  t.same(logsConfig(undefined), { maxBytes: 64 * 1024 * 1024, files: 3 })
  t.same(logsConfig({ maxBytes: 65_536, files: 0 }), { maxBytes: 65_536, files: 0 })
  const bad: [unknown, RegExp][] = [
    [{ maxBytes: 100 }, /logs.maxBytes/],
    [{ maxBytes: 1.5e6 + 0.5 }, /logs.maxBytes/],
    [{ files: 21 }, /logs.files/],
    [{ files: -1 }, /logs.files/],
    [{ keepDays: 3 }, /'logs.keepDays' is not a known field/],
  ]
  for (const [v, re] of bad) t.throws(() => logsConfig(v), { name: 'ConfigError', message: re }, JSON.stringify(v))
})
