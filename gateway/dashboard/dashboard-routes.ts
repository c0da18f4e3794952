// The customer dashboard served by the gateway (spec/dashboard.md): the page shell at / and /app/... (and at
// /verify and /reset, where the mailed links point), its modules and style sheet under /assets/. The browser
// sources are TypeScript, stripped of their types once when the gateway starts (no build step). Every answer
// here carries the page security headers (CSP without inline script or style, no framing, no referrer).
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { KIT_DIR, loadBrowserAssets, PAGE_SECURITY_HEADERS, withModulePreloads, type BrowserAsset } from '../../appliance/web/browser-assets.ts'
import { NotFoundError } from '../errors.ts'

const WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), 'web')
const SHELL_PATHS = ['/', '/app', '/app/*', '/verify', '/reset']

export function registerDashboard(app: FastifyInstance): void {
  const assets = loadBrowserAssets([{ dir: KIT_DIR, url: '/assets/kit/' }, { dir: WEB_DIR, url: '/assets/app/' }])
  const shell = withModulePreloads(assets.get('/assets/app/index.html')!, assets)
  const send = (reply: FastifyReply, a: BrowserAsset, ifNoneMatch: string | undefined): FastifyReply => {
    void reply.headers(PAGE_SECURITY_HEADERS).header('etag', a.etag).type(a.contentType)
    return ifNoneMatch === a.etag ? reply.status(304).send() : reply.send(a.body)
  }
  const hidden = { schema: { hide: true } }
  for (const path of SHELL_PATHS) app.get(path, hidden, async (req, reply) => send(reply, shell, req.headers['if-none-match']))
  app.get('/assets/*', hidden, async (req, reply) => {
    const a = assets.get(req.url.split('?')[0]!)
    if (!a || a.url.endsWith('.html')) throw new NotFoundError('no such asset')
    return send(reply, a, req.headers['if-none-match'])
  })
}
