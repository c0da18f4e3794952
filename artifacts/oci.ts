// Container images as artifacts (spec/artifacts.md "Images"): the archive `docker save` writes, named by the
// digest of its bytes. Inside, manifest.json names exactly one image whose config blob's digest is the image
// id Docker runs it by; a provider checks that id against the one the workload names before it loads the
// archive, then runs the image by that id, never by a tag.
import { readArchive, checkRelativePath } from './archive.ts'
import { UnsafeArchiveError } from './errors.ts'

const ID = /^sha256:[0-9a-f]{64}$/

/** The image id (`sha256:<hex>` of its config) of the one image a `docker save` archive holds. */
export async function imageIdOfArchive(file: string): Promise<string> {
  let manifest: unknown
  await readArchive(file, async (e) => {
    checkRelativePath(e.path, 'image archive entry')
    if (e.path === 'manifest.json' && e.type === '0') {
      if (e.bytes > 1 << 20) throw new UnsafeArchiveError('the image archive has a manifest.json over 1 MiB')
      try {
        manifest = JSON.parse((await e.read()).toString('utf8'))
      } catch {
        throw new UnsafeArchiveError('the image archive has a manifest.json that is not JSON')
      }
    }
  }, { maxEntries: 100_000 })
  if (!Array.isArray(manifest) || manifest.length !== 1) throw new UnsafeArchiveError('an image archive must hold exactly one image (manifest.json with one entry)')
  const config = (manifest[0] as { Config?: unknown }).Config
  if (typeof config !== 'string') throw new UnsafeArchiveError('the image archive manifest names no Config')
  // legacy layout `<hex>.json`, OCI layout `blobs/sha256/<hex>`
  const m = /^(?:blobs\/sha256\/)?([0-9a-f]{64})(?:\.json)?$/.exec(config)
  if (!m) throw new UnsafeArchiveError(`the image archive's Config '${config.slice(0, 80)}' is not a sha256 blob`)
  const id = `sha256:${m[1]}`
  if (!ID.test(id)) throw new UnsafeArchiveError('bad image id')
  return id
}
