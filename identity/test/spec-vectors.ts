// Reads the ```json test-vector NAME blocks out of a spec/*.md file, so tests check the spec's own vectors.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const specDir = join(dirname(fileURLToPath(import.meta.url)), '../../spec')

export function specVectors(file: string): Map<string, unknown> {
  const text = readFileSync(join(specDir, file), 'utf8')
  const out = new Map<string, unknown>()
  for (const m of text.matchAll(/```json test-vector ([\w-]+)\n([\s\S]*?)\n```/g)) out.set(m[1]!, JSON.parse(m[2]!))
  return out
}

export function specVector<T>(file: string, name: string): T {
  const v = specVectors(file).get(name)
  if (v === undefined) throw new Error(`no test-vector ${name} in spec/${file}`)
  return v as T
}
