// `noir deploy`'s first step (spec/artifacts.md "Deploying local files"): a workload file may name local files
// where the provider needs code, `runtime.module: ./hello.wasm`, `runtime.bundle: ./counter.ts` (with its
// relative imports), or `runtime.imageArchive: local` (the image `runtime.image` names in the local Docker).
// Each becomes an artifact in this node's store (pinned, so it is kept and served), and the workload names
// it by digest; a container image then runs by its id. Paths are read here, on the consumer's machine, and
// only digests leave it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { ArtifactStore } from '../../artifacts/store.ts'
import { writeArchive } from '../../artifacts/archive.ts'
import { bundleEntries } from '../../artifacts/bundle.ts'
import { imageIdOfArchive } from '../../artifacts/oci.ts'
import { ArtifactSourceError } from '../../artifacts/errors.ts'
import { saveImageStream } from '../../appliance/executor/docker/image-archive.ts'

export interface ShippedArtifact {
  field: 'runtime.module' | 'runtime.bundle' | 'runtime.imageArchive' | 'runtime.kernel' | 'runtime.initrd' | 'runtime.rootfs'
  source: string
  digest: string
  bytes: number
}

/** A local path (`./x`, `../x`, `/x`), as opposed to a catalog name or a digest. */
export const isLocalPath = (v: unknown): v is string => typeof v === 'string' && (v.startsWith('./') || v.startsWith('../') || isAbsolute(v))

/**
 * Turns the local files a parsed (not yet validated) workload names into artifacts of the store at `home`,
 * and returns the workload naming them by digest. Anything else is returned unchanged.
 */
export async function shipLocalArtifacts(raw: unknown, o: { baseDir: string; home: string }): Promise<{ workload: unknown; shipped: ShippedArtifact[] }> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { workload: raw, shipped: [] }
  const w = raw as Record<string, unknown>
  const rt = w.runtime
  if (!rt || typeof rt !== 'object' || Array.isArray(rt)) return { workload: raw, shipped: [] }
  const r = { ...(rt as Record<string, unknown>) }
  const shipped: ShippedArtifact[] = []
  let store: ArtifactStore | undefined
  const st = (): ArtifactStore => (store ??= new ArtifactStore({ dir: join(o.home, 'artifacts') }))
  const scratch = mkdtempSync(join(tmpdir(), 'noir-deploy-'))
  try {
    // single files: a WASI module; a microVM's kernel, initramfs and disk image
    for (const f of ['module', 'kernel', 'initrd', 'rootfs'] as const) {
      const v = r[f]
      if (!isLocalPath(v)) continue
      const source = resolve(o.baseDir, v)
      const { digest, bytes } = await st().putFile(source).catch((err: Error) => {
        throw new ArtifactSourceError(`runtime.${f} '${v}': ${err.message}`)
      })
      shipped.push({ field: `runtime.${f}`, source, digest, bytes })
      r[f] = digest
    }
    if (isLocalPath(r.bundle)) {
      const source = resolve(o.baseDir, r.bundle)
      const file = join(scratch, 'bundle.tar')
      await writeArchive(file, bundleEntries(source))
      const { digest, bytes } = await st().putFile(file)
      shipped.push({ field: 'runtime.bundle', source, digest, bytes })
      r.bundle = digest
    }
    if (r.imageArchive === 'local') {
      if (typeof r.image !== 'string') throw new ArtifactSourceError('runtime.imageArchive: local needs runtime.image, the local image to ship')
      // streamed from dockerd into the store, hashed once on the way
      const { digest, bytes } = await st().putStream(await saveImageStream(r.image) as AsyncIterable<Uint8Array>)
      const id = await imageIdOfArchive(await st().verifiedPath(digest))
      shipped.push({ field: 'runtime.imageArchive', source: `docker:${r.image}`, digest, bytes })
      r.image = id
      r.imageArchive = digest
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
  for (const s of shipped) st().pin(s.digest)
  return { workload: { ...w, runtime: r }, shipped }
}
