// One run of a workload's health check (spec/ingress.md "Health checks"), from the provider's side: `tcp`
// connects to the port the instance publishes on loopback, `http` sends `GET path` there and wants a 2xx or
// 3xx answer, `exec` runs the command inside the instance (containers: `docker exec`) and wants exit code 0.
// Each run ends within the check's time-out and says why it failed.
import { connect } from 'node:net'
import { request } from 'node:http'
import { spawn } from 'node:child_process'
import type { HealthCheck } from '../../actors/workload/workload.ts'

export interface ProbeResult {
  ok: boolean
  /** Why it failed (or what passed), for status and events. */
  detail: string
  ms: number
}

export interface ProbeTarget {
  /** Loopback host port the check's port is published on (tcp, http). */
  hostPort?: number
  /** Runs the command inside the instance (exec); undefined when the instance's runtime cannot. */
  exec?: (command: string[], timeoutMs: number) => Promise<{ code: number | null; output: string }>
}

export async function probe(check: HealthCheck, target: ProbeTarget): Promise<ProbeResult> {
  const t0 = performance.now()
  const timeoutMs = Math.max(1, Math.round(check.timeoutSeconds * 1000))
  const done = (ok: boolean, detail: string): ProbeResult => ({ ok, detail, ms: Math.round(performance.now() - t0) })
  try {
    if (check.type === 'exec') {
      if (!target.exec) return done(false, 'exec checks need a container (this runtime cannot run a command inside the instance)')
      const r = await target.exec(check.command ?? [], timeoutMs)
      return r.code === 0 ? done(true, 'exit 0') : done(false, `exit ${r.code ?? 'by signal'}${r.output ? `: ${r.output.slice(0, 200)}` : ''}`)
    }
    if (target.hostPort === undefined) return done(false, `port ${check.port} is not among the workload's published ports`)
    if (check.type === 'tcp') {
      await tcpConnect(target.hostPort, timeoutMs)
      return done(true, 'connected')
    }
    const status = await httpGet(target.hostPort, check.path ?? '/', timeoutMs)
    return status >= 200 && status < 400 ? done(true, `HTTP ${status}`) : done(false, `HTTP ${status}`)
  } catch (err) {
    return done(false, (err as Error).message)
  }
}

function tcpConnect(port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port })
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`no connection within ${timeoutMs} ms`))
    }, timeoutMs)
    s.once('connect', () => {
      clearTimeout(timer)
      s.destroy()
      resolve()
    })
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(new Error(`connection refused (${err.code ?? err.message})`))
    })
  })
}

function httpGet(port: number, path: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, headers: { 'user-agent': 'noir-health/1', connection: 'close' } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code === 'ECONNREFUSED' ? 'connection refused' : err.message)))
    req.end()
  })
}

/** `docker exec` of a command in a container, ended (and failed) after `timeoutMs`. */
export function dockerExec(containerId: string, command: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const p = spawn('docker', ['exec', containerId, ...command], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const keep = (b: Buffer): void => {
      if (output.length < 1024) output += b.toString('utf8')
    }
    p.stdout.on('data', keep)
    p.stderr.on('data', keep)
    const timer = setTimeout(() => {
      p.kill('SIGKILL')
      resolve({ code: null, output: `no exit within ${timeoutMs} ms` })
    }, timeoutMs)
    p.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output: output.trim() })
    })
    p.on('error', (err) => {
      clearTimeout(timer)
      resolve({ code: null, output: err.message })
    })
  })
}
