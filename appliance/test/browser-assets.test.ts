// The browser sources served without a build: types are stripped, relative .ts imports become the URLs the
// imported files are served at (across mounts), an import of a file no mount serves stops the server at start,
// and the page headers allow no inline script or style.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AssetSourceError, CONTENT_SECURITY_POLICY, loadBrowserAssets, withModulePreloads } from '../web/browser-assets.ts'

t.test('sources become ES modules with rewritten imports', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-assets-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'kit'))
  mkdirSync(join(dir, 'app', 'pages'), { recursive: true })
  writeFileSync(join(dir, 'kit', 'dom.ts'), 'export const h = (tag: string): string => tag\n')
  writeFileSync(join(dir, 'app', 'pages', 'one.ts'), "import { h } from '../../kit/dom.ts'\nimport type { X } from './types.ts'\nexport const one: number = h('p').length\n")
  writeFileSync(join(dir, 'app', 'main.ts'), "import { one } from './pages/one.ts'\nconst later = () => import('./pages/one.ts')\nexport { one, later }\n")
  writeFileSync(join(dir, 'app', 'index.html'), '<!doctype html><html><head><title>x</title></head><body></body></html>')
  const assets = loadBrowserAssets([{ dir: join(dir, 'kit'), url: '/k/' }, { dir: join(dir, 'app'), url: '/a/' }])
  t.same([...assets.keys()].sort(), ['/a/index.html', '/a/main.js', '/a/pages/one.js', '/k/dom.js'])
  const one = assets.get('/a/pages/one.js')!.body.toString()
  t.match(one, /from '\/k\/dom\.js'/, 'an import from another mount points at its URL')
  t.notMatch(one, /: number|: string|import type/, 'types are gone')
  t.match(assets.get('/a/main.js')!.body.toString(), /import\('\/a\/pages\/one\.js'\)/, 'dynamic imports too')
  t.equal(assets.get('/a/main.js')!.contentType, 'text/javascript; charset=utf-8')
  const shell = withModulePreloads(assets.get('/a/index.html')!, assets)
  t.match(shell.body.toString(), /<link rel="modulepreload" href="\/a\/main\.js">/, 'the shell preloads every module')
  t.not(shell.etag, assets.get('/a/index.html')!.etag)

  writeFileSync(join(dir, 'app', 'bad.ts'), "import { x } from '../../outside.ts'\nexport { x }\n")
  t.throws(() => loadBrowserAssets([{ dir: join(dir, 'app'), url: '/a/' }]), AssetSourceError, 'an import of a file no mount serves stops the server at start')
})

t.test('built sources (.js with .js imports, as the installed package carries them) are served the same way', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-assets-built-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'kit'))
  mkdirSync(join(dir, 'app'))
  writeFileSync(join(dir, 'kit', 'dom.js'), 'export const h = (tag) => tag\n')
  writeFileSync(join(dir, 'app', 'main.js'), "import { h } from '../kit/dom.js'\nexport const p = h('p')\n")
  const assets = loadBrowserAssets([{ dir: join(dir, 'kit'), url: '/k/' }, { dir: join(dir, 'app'), url: '/a/' }])
  t.match(assets.get('/a/main.js')!.body.toString(), /from '\/k\/dom\.js'/)
})

t.test('the policy allows no inline script, style or framing', async (t) => {
  t.notMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval|\*/)
  t.match(CONTENT_SECURITY_POLICY, /script-src 'self'/)
  t.match(CONTENT_SECURITY_POLICY, /style-src 'self'/)
  t.match(CONTENT_SECURITY_POLICY, /frame-ancestors 'none'/)
})
