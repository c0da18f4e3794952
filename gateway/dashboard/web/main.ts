// The customer dashboard's entry (spec/dashboard.md): a small router over the History API. Every page is a
// function that fills <main>; links inside the app are intercepted, so the page is not reloaded, and the
// heading of each new page takes the focus (keyboard and screen-reader users land on it).
import { h } from '../../../appliance/web/kit/dom.ts'
import { account, refreshAccount } from './session.ts'
import { go, leavePage } from './nav.ts'
import { loginPage, resetPage, signupPage, verifyPage } from './pages/auth.ts'
import { workloadPage, workloadsPage } from './pages/workloads.ts'
import { usagePage } from './pages/usage.ts'
import { walletPage } from './pages/wallet.ts'
import { capacityPage } from './pages/capacity.ts'
import { keysPage } from './pages/keys.ts'
import { secretsPage } from './pages/secrets.ts'
import { securityPage } from './pages/security.ts'

export type Page = (main: HTMLElement, params: Record<string, string>, query: URLSearchParams) => Promise<void> | void

interface Route { pattern: RegExp; page: Page; signedIn: boolean; keys: string[] }
const route = (path: string, page: Page, signedIn: boolean): Route => {
  const keys: string[] = []
  const pattern = new RegExp(`^${path.replace(/:([a-z]+)/g, (_m, k: string) => (keys.push(k), '([^/]+)'))}/?$`)
  return { pattern, page, signedIn, keys }
}

const ROUTES: Route[] = [
  route('/app/signup', signupPage, false),
  route('/app/login', loginPage, false),
  route('/verify', verifyPage, false),
  route('/reset', resetPage, false),
  route('/app/workloads', workloadsPage, true),
  route('/app/workloads/:id', workloadPage, true),
  route('/app/capacity', capacityPage, true),
  route('/app/usage', usagePage, true),
  route('/app/wallet', walletPage, true),
  route('/app/keys', keysPage, true),
  route('/app/secrets', secretsPage, true),
  route('/app/security', securityPage, true),
]

const NAV_IN: Array<[string, string]> = [['/app/workloads', 'Workloads'], ['/app/capacity', 'Capacity'], ['/app/usage', 'Usage'], ['/app/wallet', 'Wallet'], ['/app/keys', 'API keys'], ['/app/secrets', 'Secrets'], ['/app/security', 'Security']]
const NAV_OUT: Array<[string, string]> = [['/app/login', 'Log in'], ['/app/signup', 'Sign up']]

function drawNav(path: string): void {
  const nav = document.getElementById('nav')!
  const items = account() ? NAV_IN : NAV_OUT
  nav.replaceChildren(h('ul', {}, ...items.map(([href, label]) => h('li', {}, h('a', { href, ...(path.startsWith(href) ? { 'aria-current': 'page' } : {}) }, label)))))
}

/** The path and query last drawn. */
let drawn = ''

async function render(): Promise<void> {
  leavePage()
  drawn = location.pathname + location.search
  const url = new URL(location.href)
  let path = url.pathname
  if (account() === null) await refreshAccount()
  if (path === '/' || path === '/app' || path === '/app/') {
    path = account() ? '/app/workloads' : '/app/login'
    history.replaceState(null, '', path)
    drawn = path
  }
  const main = document.getElementById('main')!
  for (const r of ROUTES) {
    const m = r.pattern.exec(path)
    if (!m) continue
    if (r.signedIn && !account()) return go('/app/login', true)
    if (!r.signedIn && account() && (path === '/app/login' || path === '/app/signup')) return go('/app/workloads', true)
    const params: Record<string, string> = {}
    r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1]!)))
    drawNav(path)
    main.replaceChildren()
    await r.page(main, params, url.searchParams)
    main.querySelector('h1')?.setAttribute('tabindex', '-1')
    main.querySelector<HTMLElement>('h1')?.focus()
    document.title = `${main.querySelector('h1')?.textContent ?? 'NoirLedger'} · NoirLedger`
    return
  }
  drawNav(path)
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/app/workloads' }, 'Back to your workloads')))
}

document.addEventListener('click', (ev) => {
  const a = (ev.target as Element | null)?.closest('a')
  if (!a || a.target || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return
  const url = new URL(a.href, location.href)
  if (url.origin !== location.origin || !(url.pathname.startsWith('/app') || url.pathname === '/')) return
  if (url.hash && url.pathname === location.pathname) return // a link within the page (the skip link)
  ev.preventDefault()
  go(url.pathname + url.search)
})
// a jump within the page (the skip link's #main) changes only the hash: nothing to draw again
addEventListener('popstate', () => void (location.pathname + location.search !== drawn && render()))
addEventListener('noir:navigate', () => void render())
void render()
