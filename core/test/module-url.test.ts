import t from 'tap'
import { runsBuilt, siblingModule } from '../module-url.ts'

t.test('a sibling module is named in the form its caller runs in', async (t) => {
  t.equal(siblingModule('file:///repo/appliance/x/a.ts', './worker.ts').href, 'file:///repo/appliance/x/worker.ts', 'sources name sources')
  t.equal(siblingModule('file:///pkg/dist/appliance/x/a.js', './worker.ts').href, 'file:///pkg/dist/appliance/x/worker.js', 'built code names built code')
  t.equal(siblingModule('file:///pkg/dist/a.js', '../b/c.ts').href, 'file:///pkg/b/c.js', 'relative paths resolve as URLs do')
  t.equal(siblingModule('file:///pkg/dist/a.js', './data.json').href, 'file:///pkg/dist/data.json', 'other files keep their name')
  t.equal(runsBuilt('file:///pkg/dist/a.js'), true)
  t.equal(runsBuilt('file:///repo/a.ts'), false)
  t.equal(runsBuilt(import.meta.url), false, 'this test runs from the sources')
})
