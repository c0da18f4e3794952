// The committed ABI and bytecode are what the committed Solidity sources compile to with the pinned solc.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { artifactsPath, renderArtifacts } from '../build-artifacts.ts'

t.test('settlement/evm/artifacts.ts is rebuilt byte for byte from contracts/*.sol', async (t) => {
  t.equal(renderArtifacts(), readFileSync(artifactsPath, 'utf8'), 'run `node settlement/evm/build-artifacts.ts` after changing a contract')
})
