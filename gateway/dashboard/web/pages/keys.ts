// API keys: make one (its token is shown here once, never again and never stored by the page), list, revoke.
import { call } from '../../../../appliance/web/kit/api.ts'
import { announce, field, form, h, input, table, when } from '../../../../appliance/web/kit/dom.ts'

interface Key { id: string; name: string; scopes: string[]; createdAt: number; expiresAt: number; lastUsedAt: number | null; revoked: boolean }
const SCOPES = ['deploy', 'logs', 'usage']

export async function keysPage(main: HTMLElement): Promise<void> {
  const list = h('div', { class: 'scroll' })
  const fresh = h('div', { 'aria-live': 'polite' })
  const draw = async () => {
    const { keys } = await call<{ keys: Key[] }>('GET', '/v1/keys')
    list.replaceChildren(keys.length === 0 ? h('p', { class: 'muted' }, 'No API keys.') : table(['Name', 'Scopes', 'Created', 'Expires', 'Last used', ''], keys.map((k) => {
      const revoke = h('button', { type: 'button', class: 'secondary', 'aria-label': `Revoke ${k.name}` }, 'Revoke')
      revoke.addEventListener('click', () => void call('DELETE', `/v1/keys/${encodeURIComponent(k.id)}`).then(() => (announce(`Revoked ${k.name}`), draw())))
      return [k.name, k.scopes.join(', '), when(k.createdAt), when(k.expiresAt), when(k.lastUsedAt), k.revoked ? 'revoked' : revoke]
    }), 'Your API keys'))
  }
  const scopes = h('fieldset', {}, h('legend', {}, 'Scopes'), ...SCOPES.map((s) => h('label', { class: 'row' }, h('input', { type: 'checkbox', name: `scope-${s}`, value: s, checked: true }), s)))
  main.append(
    h('h1', {}, 'API keys'),
    list,
    h('h2', {}, 'Make a key'),
    form('Make an API key', [
      field('Name', input('name', 'text', { required: true, maxlength: '64' })),
      scopes,
      field('Valid for (days)', input('days', 'number', { value: '90', min: '1', max: '365', required: true })),
    ], 'Make the key', async (v, f) => {
      const chosen = SCOPES.filter((s) => v[`scope-${s}`] === s)
      const k = await call<{ token: string; name: string }>('POST', '/v1/keys', { name: v.name, scopes: chosen, days: Number(v.days) })
      f.reset()
      fresh.replaceChildren(h('p', {}, `The token of ${k.name}, shown this once: copy it now.`), h('p', { class: 'secret', id: 'new-token' }, k.token))
      announce('Key made')
      await draw()
    }),
    fresh,
  )
  await draw()
}
