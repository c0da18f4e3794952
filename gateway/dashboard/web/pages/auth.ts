// Sign up, the mailed verification link, log in (with a TOTP or recovery code when the account has one), and
// the mailed password-reset link. A mailed token is read from the URL once, then the URL is replaced, so the
// token is neither kept in the history nor sent on as a Referer (the policy is no-referrer anyway).
import { ApiError, call } from '../../../../appliance/web/kit/api.ts'
import { announce, field, form, h, input } from '../../../../appliance/web/kit/dom.ts'
import { go } from '../nav.ts'
import { refreshAccount } from '../session.ts'

export function signupPage(main: HTMLElement): void {
  const done = h('div', { role: 'status' })
  main.append(
    h('h1', {}, 'Create an account'),
    form('Sign up', [
      field('Email', input('email', 'email', { autocomplete: 'email', required: true })),
      field('Password', input('password', 'password', { autocomplete: 'new-password', required: true, minlength: '12' }), 'At least 12 characters.'),
    ], 'Sign up', async (v, f) => {
      await call('POST', '/v1/auth/signup', { email: v.email, password: v.password })
      f.reset()
      done.replaceChildren(h('p', { class: 'notice' }, `Check your mail: a verification link is on its way to ${v.email}.`))
      announce('Signed up; check your mail')
    }),
    done,
    h('p', {}, 'Already have an account? ', h('a', { href: '/app/login' }, 'Log in')),
  )
}

/** The link in the verification mail: /verify?token=... */
export async function verifyPage(main: HTMLElement, _p: Record<string, string>, query: URLSearchParams): Promise<void> {
  const token = query.get('token') ?? ''
  history.replaceState(null, '', '/verify')
  main.append(h('h1', {}, 'Verify your email'))
  try {
    await call('POST', '/v1/auth/verify', { token })
    main.append(h('p', { class: 'ok' }, 'Your email address is verified.'), h('p', {}, h('a', { href: '/app/login' }, 'Log in')))
    announce('Email verified')
  } catch (err) {
    main.append(h('p', { class: 'error', role: 'alert' }, err instanceof ApiError ? `${err.name}: ${err.message}` : String(err)), h('p', {}, 'The link works once, for 24 hours. ', h('a', { href: '/app/signup' }, 'Sign up again')))
  }
}

export function loginPage(main: HTMLElement): void {
  const code = input('totp', 'text', { autocomplete: 'one-time-code', inputmode: 'numeric' })
  const codeField = field('Authentication code', code, 'From your authenticator app, or one of your recovery codes. Needed once you have enrolled two-factor authentication.')
  main.append(
    h('h1', {}, 'Log in'),
    form('Log in', [
      field('Email', input('email', 'email', { autocomplete: 'username', required: true })),
      field('Password', input('password', 'password', { autocomplete: 'current-password', required: true })),
      codeField,
    ], 'Log in', async (v) => {
      try {
        await call('POST', '/v1/auth/login', { email: v.email, password: v.password, ...(v.totp ? { totp: v.totp.trim() } : {}) })
      } catch (err) {
        if (err instanceof ApiError && err.name === 'TotpRequiredError') code.focus()
        throw err
      }
      await refreshAccount()
      announce('Logged in')
      go('/app/workloads')
    }),
    h('p', {}, 'New here? ', h('a', { href: '/app/signup' }, 'Create an account')),
    h('details', {}, h('summary', {}, 'Forgot your password?'), form('Reset password', [
      field('Email', input('email', 'email', { autocomplete: 'email', required: true })),
    ], 'Mail me a reset link', async (v) => {
      await call('POST', '/v1/auth/reset', { email: v.email })
      announce('If the address has an account, a reset link is on its way')
      main.append(h('p', { class: 'notice' }, 'If the address has an account, a reset link is on its way.'))
    })),
  )
}

/** The link in the reset mail: /reset?token=... */
export function resetPage(main: HTMLElement, _p: Record<string, string>, query: URLSearchParams): void {
  const token = query.get('token') ?? ''
  history.replaceState(null, '', '/reset')
  main.append(
    h('h1', {}, 'Choose a new password'),
    form('New password', [
      field('New password', input('password', 'password', { autocomplete: 'new-password', required: true, minlength: '12' }), 'At least 12 characters.'),
      field('Authentication code', input('totp', 'text', { autocomplete: 'one-time-code' }), 'Needed when your account has two-factor authentication.'),
    ], 'Set the password', async (v) => {
      await call('POST', '/v1/auth/reset/confirm', { token, password: v.password, ...(v.totp ? { totp: v.totp.trim() } : {}) })
      announce('Password changed')
      go('/app/login')
    }),
  )
}
