// Images that arrive as artifacts (spec/artifacts.md "Images"): a `docker save` archive, already checked by
// digest, whose one image must be the id the workload names; loaded into the local dockerd and run by that id.
import Docker from 'dockerode'
import { createReadStream, createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { imageIdOfArchive } from '../../../artifacts/oci.ts'
import { ArtifactDigestMismatchError } from '../../../artifacts/errors.ts'
import { ImageNotFoundError } from '../../errors.ts'

/** Loads `archive` when Docker lacks `imageId`; returns the id. Throws when the archive holds another image. */
export async function loadImageArchive(archive: string, imageId: string, docker: Docker = new Docker()): Promise<string> {
  const held = await imageIdOfArchive(archive)
  if (held !== imageId) throw new ArtifactDigestMismatchError(`the image archive holds image ${held}, not ${imageId} as the workload says`, { imageId, held })
  try {
    await docker.getImage(imageId).inspect()
    return imageId // loaded before (an image id names its content: nothing to check again)
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err
  }
  const res = await docker.loadImage(createReadStream(archive), { quiet: true })
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(res, (err: Error | null, out: { error?: string; errorDetail?: { message?: string } }[]) => {
      const failed = err ?? out.find((o) => o.error)
      if (failed) reject(new Error(`docker load: ${err ? err.message : (failed as { error?: string }).error}`))
      else resolve()
    })
  })
  try {
    await docker.getImage(imageId).inspect()
  } catch {
    throw new ImageNotFoundError(imageId)
  }
  return imageId
}

/** The `docker save IMAGE` stream (the consumer's side of `noir deploy`). */
export async function saveImageStream(image: string, docker: Docker = new Docker()): Promise<NodeJS.ReadableStream> {
  try {
    return await docker.getImage(image).get()
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) throw new ImageNotFoundError(image)
    throw err
  }
}

/** Writes `docker save IMAGE` to `file`. */
export async function saveImage(image: string, file: string, docker: Docker = new Docker()): Promise<void> {
  await pipeline(await saveImageStream(image, docker), createWriteStream(file, { flags: 'wx', mode: 0o600 }))
}
