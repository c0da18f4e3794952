// Secrets: their names only (the gateway never answers a value back), set one, delete one. When the gateway
// has no secrets routes (404), the page says so.
import { call, optional } from '../../../../appliance/web/kit/api.ts'
import { announce, field, form, h, input, table, when } from '../../../../appliance/web/kit/dom.ts'

interface SecretName { name: string; version?: number; updatedAt?: number | string }

export async function secretsPage(main: HTMLElement): Promise<void> {
  main.append(h('h1', {}, 'Secrets'))
  const first = await optional<{ secrets: Array<SecretName | string> }>('GET', '/v1/secrets')
  if (!first) {
    main.append(h('p', { class: 'notice', id: 'secrets-unavailable' }, 'Secrets are not available on this gateway yet.'))
    return
  }
  const list = h('div', { class: 'scroll' })
  const draw = (secrets: Array<SecretName | string>) => {
    const rows = secrets.map((s) => (typeof s === 'string' ? { name: s } : s))
    list.replaceChildren(rows.length === 0 ? h('p', { class: 'muted' }, 'No secrets.') : table(['Name', 'Version', 'Updated', ''], rows.map((r) => {
      const n = r.name
      const del = h('button', { type: 'button', class: 'secondary', 'aria-label': `Delete ${n}` }, 'Delete')
      del.addEventListener('click', () => void call('DELETE', `/v1/secrets/${encodeURIComponent(n)}`).then(async () => (announce(`Deleted ${n}`), draw((await call<{ secrets: SecretName[] }>('GET', '/v1/secrets')).secrets))))
      return [n, r.version ?? '—', when(r.updatedAt), del]
    }), 'Your secrets (names only, never values)'))
  }
  draw(first.secrets)
  main.append(list, h('h2', {}, 'Set a secret'), form('Set a secret', [
    field('Name', input('name', 'text', { required: true, pattern: '[A-Za-z0-9_.\\-]{1,128}' })),
    field('Value', input('value', 'password', { required: true, autocomplete: 'off' }), 'Write-only: it is never shown again.'),
  ], 'Save', async (v, f) => {
    await call('PUT', `/v1/secrets/${encodeURIComponent(v.name ?? '')}`, { value: v.value })
    f.reset()
    announce('Saved')
    draw((await call<{ secrets: SecretName[] }>('GET', '/v1/secrets')).secrets)
  }))
}
