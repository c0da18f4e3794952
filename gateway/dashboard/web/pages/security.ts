// Two-factor authentication (TOTP enrolment: the otpauth secret to type or paste into an authenticator, then a
// code to confirm; the recovery codes shown once), the account's sessions (revoke any), and log out.
import { call } from '../../../../appliance/web/kit/api.ts'
import { announce, field, form, h, input, table, when } from '../../../../appliance/web/kit/dom.ts'
import { go } from '../nav.ts'
import { account, forget, refreshAccount } from '../session.ts'

interface SessionView { id: string; createdAt: number; lastSeenAt: number; expiresAt: number; current: boolean }

export async function securityPage(main: HTMLElement): Promise<void> {
  const me = account()!
  const twoFactor = h('section', { 'aria-labelledby': 'h-2fa' }, h('h2', { id: 'h-2fa' }, 'Two-factor authentication'))
  const sessions = h('div', { class: 'scroll' })
  const logout = h('button', { type: 'button', class: 'secondary' }, 'Log out')
  logout.addEventListener('click', () => void call('POST', '/v1/auth/logout').then(() => {
    forget()
    announce('Logged out')
    go('/app/login')
  }))
  main.append(h('h1', {}, 'Security'), h('p', {}, `Signed in as ${me.email}.`), twoFactor, h('section', { 'aria-labelledby': 'h-sessions' }, h('h2', { id: 'h-sessions' }, 'Sessions'), sessions), logout)

  const drawSessions = async () => {
    const { sessions: list } = await call<{ sessions: SessionView[] }>('GET', '/v1/auth/sessions')
    sessions.replaceChildren(table(['Started', 'Last seen', 'Expires', ''], list.map((s) => {
      if (s.current) return [when(s.createdAt), when(s.lastSeenAt), when(s.expiresAt), 'this session']
      const b = h('button', { type: 'button', class: 'secondary', 'aria-label': `Revoke the session started ${when(s.createdAt)}` }, 'Revoke')
      b.addEventListener('click', () => void call('DELETE', `/v1/auth/sessions/${encodeURIComponent(s.id)}`).then(() => (announce('Session revoked'), drawSessions())))
      return [when(s.createdAt), when(s.lastSeenAt), when(s.expiresAt), b]
    }), 'Your sessions'))
  }

  const showCodes = (codes: string[]) => h('div', { class: 'notice' }, h('p', {}, 'Your recovery codes, shown this once. Each works once instead of an authentication code; keep them somewhere safe.'), h('ol', { id: 'recovery-codes', class: 'secret' }, ...codes.map((c) => h('li', {}, c))))

  if (me.totp) {
    twoFactor.append(h('p', { class: 'ok', id: 'totp-on' }, `Two-factor authentication is on. Recovery codes left: ${me.recoveryCodesLeft ?? '?'}.`),
      form('New recovery codes', [field('Authentication code', input('code', 'text', { autocomplete: 'one-time-code', required: true }))], 'Replace my recovery codes', async (v) => {
        const r = await call<{ recoveryCodes: string[] }>('POST', '/v1/auth/recovery-codes', { code: v.code })
        twoFactor.append(showCodes(r.recoveryCodes))
      }))
  } else {
    const start = h('button', { type: 'button' }, 'Set up two-factor authentication')
    twoFactor.append(h('p', {}, 'Two-factor authentication is off.'), start)
    start.addEventListener('click', () => void call<{ secret: string; uri: string }>('POST', '/v1/auth/totp').then((e) => {
      start.remove()
      const uri = h('a', { href: e.uri, id: 'totp-uri' }, 'Open in an authenticator app on this device')
      twoFactor.append(
        h('p', {}, 'Scan this code with your authenticator app (or type the secret, or open the link), then enter the code it shows.'),
        h('img', { src: '/v1/auth/totp/qr.svg', id: 'totp-qr', width: '180', height: '180', alt: 'QR code of the authentication secret, for an authenticator app' }),
        h('p', { class: 'secret', id: 'totp-secret', 'aria-label': 'TOTP secret' }, e.secret),
        h('p', {}, uri),
        form('Confirm two-factor authentication', [field('Authentication code', input('code', 'text', { autocomplete: 'one-time-code', inputmode: 'numeric', required: true }))], 'Confirm', async (v, f) => {
          const r = await call<{ recoveryCodes: string[] }>('POST', '/v1/auth/totp/confirm', { code: (v.code ?? '').trim() })
          f.remove()
          await refreshAccount()
          twoFactor.append(h('p', { class: 'ok', id: 'totp-on' }, 'Two-factor authentication is on.'), showCodes(r.recoveryCodes))
          announce('Two-factor authentication is on')
        }),
      )
    }).catch((err: unknown) => announce(String(err))))
  }
  await drawSessions()
}
