// `noir console`: the worker console of the local node in a browser (spec/dashboard.md "Worker console"). It
// asks the daemon for a one-time code (with the API token, which stays in this process) and prints the URL
// that turns the code into a console session cookie; --open also hands the URL to the desktop's browser.
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { ApiClient } from '../api-client.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'

export const consoleCommand: Command = {
  path: ['console'],
  summary: "the node's worker console in a browser (prints a one-time URL)",
  usage: `Usage: noir console [--open] [--json]

Prints http://127.0.0.1:PORT/console/login?code=...: open it in a browser on this machine within 60 s. The
code works once and becomes a console session (an HttpOnly cookie, 12 hours); the API token is never in the
page. --open also starts xdg-open with the URL.`,
  async run(ctx, argv) {
    let open = false
    try {
      open = parseArgs({ args: argv, options: { open: { type: 'boolean' } }, strict: true }).values.open === true
    } catch (err) {
      throw new UsageError((err as Error).message)
    }
    const api = ApiClient.forHome(ctx.home)
    const r = await api.post<{ code: string; expiresAt: number; path: string }>('/v1/console/codes')
    const url = `${api.info!.url}${r.path}?code=${r.code}`
    if (ctx.json) return void printJson(ctx, { url, expiresAt: r.expiresAt })
    printLine(ctx, url)
    printLine(ctx, 'open it in a browser on this machine within 60 s; it works once')
    if (open) spawn('xdg-open', [url], { stdio: 'ignore', detached: true }).on('error', () => undefined).unref()
  },
}
