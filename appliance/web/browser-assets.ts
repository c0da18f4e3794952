// Browser sources served as ES modules with no build step (spec/dashboard.md "Build"): each .ts file's types
// are stripped once, when the server starts (node:module stripTypeScriptTypes), and its relative imports of
// .ts files are rewritten to the URLs the imported files are served at; .css, .html and .svg files are served
// as they are. Every page answer carries PAGE_SECURITY_HEADERS: a Content-Security-Policy with no inline
// script or style, no framing, no referrer (a mailed link's token never leaves in a Referer).
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { stripTypeScriptTypes } from 'node:module'
import { dirname, extname, join, relative, resolve } from 'node:path'

export interface BrowserAsset {
  /** The URL path it is served at, e.g. /assets/app/main.js. */
  url: string
  contentType: string
  body: Buffer
  etag: string
}

/** A folder of browser sources and the URL prefix (ending in /) its files are served under. */
export interface AssetMount {
  dir: string
  url: string
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "font-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ')

export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
}

const TYPES: Record<string, string> = {
  '.ts': 'text/javascript; charset=utf-8',
  // the installed package carries them built (scripts/build-package.ts: types stripped, imports made .js)
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
}

/** A relative import of a module: a static one (from ./x.ts), a side-effect one, or a dynamic one (or .js, built). */
const IMPORT = /(\bfrom\s*|\bimport\s*\(?\s*)(['"])(\.{1,2}\/[^'"\n]+?\.[tj]s)\2/g

export class AssetSourceError extends Error {
  override name = 'AssetSourceError'
  readonly code = 'ERR_ASSET_SOURCE'
}

function filesUnder(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...filesUnder(p))
    else if (TYPES[extname(name)] !== undefined) out.push(p)
  }
  return out
}

/** Strips types without Node's one-time ExperimentalWarning for this API (the server's own output stays quiet). */
function stripTypes(source: string): string {
  const emit = process.emitWarning
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (String(warning).includes('stripTypeScriptTypes')) return
    ;(emit as (...a: unknown[]) => void).call(process, warning, ...rest)
  }) as typeof process.emitWarning
  try {
    return stripTypeScriptTypes(source, { mode: 'strip' })
  } finally {
    process.emitWarning = emit
  }
}

/** Every file of every mount, ready to serve, by URL path. Throws AssetSourceError for an import of a file no mount serves. */
export function loadBrowserAssets(mounts: AssetMount[]): Map<string, BrowserAsset> {
  const urlOf = new Map<string, string>()
  for (const m of mounts) {
    for (const file of filesUnder(m.dir)) urlOf.set(resolve(file), m.url + relative(m.dir, file).split('\\').join('/').replace(/\.ts$/, '.js'))
  }
  const assets = new Map<string, BrowserAsset>()
  for (const [file, url] of urlOf) {
    let text = readFileSync(file, 'utf8')
    if (file.endsWith('.ts') || file.endsWith('.js')) {
      text = (file.endsWith('.ts') ? stripTypes(text) : text).replace(IMPORT, (_all, lead: string, q: string, spec: string) => {
        const target = urlOf.get(resolve(dirname(file), spec))
        if (target === undefined) throw new AssetSourceError(`${file} imports ${spec}, which no mount serves`)
        return `${lead}${q}${target}${q}`
      })
    }
    const body = Buffer.from(text, 'utf8')
    assets.set(url, { url, contentType: TYPES[extname(file)]!, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` })
  }
  return assets
}

/**
 * The page shell with a `<link rel="modulepreload">` for every module it will import: the browser fetches the
 * whole module graph at once instead of one import level per round trip (no bundler; spec/dashboard.md).
 */
export function withModulePreloads(shell: BrowserAsset, assets: Map<string, BrowserAsset>): BrowserAsset {
  const links = [...assets.values()].filter((a) => a.url.endsWith('.js')).map((a) => `<link rel="modulepreload" href="${a.url}">`).join('\n')
  const body = Buffer.from(shell.body.toString('utf8').replace('</head>', `${links}\n</head>`), 'utf8')
  return { ...shell, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` }
}

/** The shared browser kit (DOM helpers, the API client, the plots, the style sheet), mounted by both pages. */
export const KIT_DIR = join(dirname(new URL(import.meta.url).pathname), 'kit')
