// Artifacts as a node service (spec/artifacts.md): this node's content-addressed store, served to the mesh
// over /noir/artifact/1.0.0 and announced in the DHT; fetched for the workloads this node runs (from the
// consumer first, then from any node the DHT names), checked by digest, unpacked (actor bundles) or loaded
// into Docker (images, run by id); provenance records signed when a run ends, and countersigned here for the
// runs this node ordered. config.json: `artifacts.maxBytes` (the store's bound, default 10 GiB),
// `artifacts.hashOffThreadFrom` (bytes from which a fetch is hashed by a worker thread; default never).
import { join } from 'node:path'
import { existsSync, readdirSync, rmSync, renameSync, mkdirSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { ApiRoute, JsonValue, NodeContext, NodeService } from '../daemon/service.ts'
import { jsonCopy } from '../daemon/service.ts'
import { ArtifactStore, DEFAULT_STORE_BYTES } from '../../artifacts/store.ts'
import { fetchArtifact, fetchProvenance, serveArtifacts } from '../../artifacts/protocol.ts'
import { cidOf, digestHex, isDigest } from '../../artifacts/digest.ts'
import { ArtifactNotFoundError, InvalidProvenanceError } from '../../artifacts/errors.ts'
import { unpackArchive, walkFolder, writeArchive } from '../../artifacts/archive.ts'
import { bundleEntryPath } from '../../artifacts/bundle.ts'
import { countersignProvenance, signProvenance, verifyProvenance, workloadDigest, type ProvenanceBody, type ProvenanceRecord } from '../../artifacts/provenance.ts'
import { peerIdFromDid, didOfPeer } from '../../identity/did-key.ts'
import { InvalidRequestError, ServiceNotStartedError } from '../daemon/errors.ts'
import { loadImageArchive } from '../executor/docker/image-archive.ts'
import type { RunEnded, WorkloadArtifacts } from './appliance-runtime.ts'

/** Most bytes of one state archive unpacked (a migration or failover). */
const MAX_STATE_BYTES = 4 * 1024 ** 3
/** Most bytes of one bundle unpacked. */
const MAX_BUNDLE_BYTES = 64 * 1024 ** 2
/** How long the DHT is asked for holders of an artifact the consumer did not have. */
const FIND_PROVIDERS_MS = 10_000

const PROVENANCE_KEY = (contractId: string): string => `prov:${contractId}`

export class ArtifactService implements NodeService, WorkloadArtifacts {
  readonly name = 'artifacts'
  #ctx: NodeContext | undefined
  #store: ArtifactStore | undefined
  #unserve: (() => Promise<void>) | undefined
  readonly #inflight = new Map<string, Promise<string>>()
  readonly stats = { served: 0, servedBytes: 0, fetched: 0, fetchedBytes: 0, refused: 0 }

  get store(): ArtifactStore {
    if (!this.#store) throw new ServiceNotStartedError('the artifact store is read before the artifacts service started')
    return this.#store
  }

  async start(ctx: NodeContext): Promise<void> {
    this.#ctx = ctx
    const cfg = (ctx.config.artifacts ?? {}) as { maxBytes?: unknown; hashOffThreadFrom?: unknown }
    const maxBytes = typeof cfg.maxBytes === 'number' && Number.isSafeInteger(cfg.maxBytes) && cfg.maxBytes > 0 ? cfg.maxBytes : DEFAULT_STORE_BYTES
    const off = typeof cfg.hashOffThreadFrom === 'number' && cfg.hashOffThreadFrom >= 0 ? { hashOffThreadFrom: cfg.hashOffThreadFrom } : {}
    this.#store = new ArtifactStore({ dir: join(ctx.home, 'artifacts'), maxBytes, ...off })
    this.#unserve = await serveArtifacts(this.#host, this.#store, {
      onServed: (s) => {
        if (s.error) {
          this.stats.refused++
          ctx.log.debug('artifact request refused', { ...s })
        } else {
          this.stats.served++
          this.stats.servedBytes += s.bytes
        }
      },
      provenance: async (contractId, peer) => this.#provenanceFor(contractId, peer),
    })
    // what this node deployed is announced again (DHT records expire)
    for (const a of this.#store.list()) if (a.pinned) this.announce(a.digest)
  }

  async stop(): Promise<void> {
    await this.#unserve?.()
  }

  get #host(): Libp2p {
    return this.#ctx!.mesh.host as unknown as Libp2p
  }

  /** Announces in the DHT that this node holds `digest` (best effort: a lone node has no DHT peers). */
  announce(digest: string): void {
    const ctx = this.#ctx
    if (!ctx) return
    this.#host.contentRouting.provide(cidOf(digest), { signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(30_000)]) })
      .catch((err: Error) => ctx.log.debug('artifact not announced in the DHT', { digest, error: err.message }))
  }

  /**
   * A verified local path of `digest`: from the store, else fetched from the nodes `from` names (DIDs, the
   * consumer first), else from holders the DHT names. Concurrent calls for one digest share one fetch.
   */
  async file(digest: string, o: { from: string[] }): Promise<string> {
    digestHex(digest)
    const store = this.store
    if (store.has(digest)) return await store.verifiedPath(digest)
    let p = this.#inflight.get(digest)
    if (!p) {
      p = this.#fetch(digest, o.from).finally(() => this.#inflight.delete(digest))
      this.#inflight.set(digest, p)
    }
    return await p
  }

  async #fetch(digest: string, from: string[]): Promise<string> {
    const ctx = this.#ctx!
    const tried: string[] = []
    const attempt = async (peer: PeerId): Promise<string | undefined> => {
      if (peer.equals(this.#host.peerId)) return undefined
      tried.push(peer.toString())
      try {
        const t0 = Date.now()
        const { bytes, path } = await fetchArtifact(this.#host, peer, digest, this.store, { signal: ctx.signal })
        this.stats.fetched++
        this.stats.fetchedBytes += Math.max(0, bytes)
        ctx.log.info('artifact fetched', { digest, from: peer.toString(), bytes, ms: Date.now() - t0 })
        // just hashed on the way in; one held before (a concurrent fetch) is checked again
        return path ?? await this.store.verifiedPath(digest)
      } catch (err) {
        const e = err as Error
        ctx.log.info('artifact not fetched', { digest, from: peer.toString(), error: e.name, message: e.message })
        // a holder that sent bytes that do not match is not asked again; that failure is the answer if nobody has it
        if (!(err instanceof ArtifactNotFoundError)) lastError = err as Error
        return undefined
      }
    }
    let lastError: Error | undefined
    for (const did of from) {
      let peer: PeerId
      try {
        peer = peerIdFromDid(did)
      } catch {
        continue
      }
      const path = await attempt(peer)
      if (path) return path
    }
    try {
      for await (const prov of this.#host.contentRouting.findProviders(cidOf(digest), { signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(FIND_PROVIDERS_MS)]) })) {
        if (tried.includes(prov.id.toString())) continue
        if (prov.multiaddrs.length > 0) await this.#host.peerStore.merge(prov.id, { multiaddrs: prov.multiaddrs }).catch(() => undefined)
        const path = await attempt(prov.id)
        if (path) return path
      }
    } catch (err) {
      ctx.log.debug('DHT look-up for an artifact ended', { digest, error: (err as Error).message })
    }
    if (lastError) throw lastError
    throw new ArtifactNotFoundError(`no node asked holds ${digest} (asked ${tried.length}: the consumer and the DHT's holders)`, { digest, asked: tried.length })
  }

  /** The entry file of an actor bundle artifact, unpacked once per digest under `<home>/artifacts/bundles`. */
  async bundle(digest: string, o: { from: string[] }): Promise<string> {
    const archive = await this.file(digest, o)
    const folder = join(this.store.dir, 'bundles', digestHex(digest))
    if (!existsSync(join(folder, '.complete'))) {
      rmSync(folder, { recursive: true, force: true })
      // the sandbox's unprivileged user reads the bundle (the store's own folder stays 0700; bubblewrap binds the bundle)
      mkdirSync(join(this.store.dir, 'bundles'), { recursive: true, mode: 0o711 })
      const tmp = `${folder}.${randomBytes(6).toString('hex')}`
      try {
        await unpackArchive(archive, tmp, { maxBytes: MAX_BUNDLE_BYTES, readableByAll: true })
        mkdirSync(join(tmp, '.complete'))
        renameSync(tmp, folder)
      } catch (err) {
        rmSync(tmp, { recursive: true, force: true })
        throw err
      }
    }
    return bundleEntryPath(folder)
  }

  /** Loads an image archive artifact into Docker and returns the image id, after checking it is `imageId`. */
  async image(digest: string, imageId: string, o: { from: string[] }): Promise<string> {
    const archive = await this.file(digest, o)
    return await loadImageArchive(archive, imageId)
  }

  /**
   * A checkpoint: the state directory as a tar artifact (links left out), announced; pinned unless `pin` is
   * false (a live checkpoint, taken every interval: its copy on the orchestrating node is the one that counts,
   * and the store's bound may evict the older ones here).
   */
  async packState(dir: string, o: { pin?: boolean } = {}): Promise<{ digest: string; bytes: number }> {
    const tmp = join(tmpdir(), `noir-state-${randomBytes(8).toString('hex')}.tar`)
    try {
      const { entries, skipped } = walkFolder(dir, { skipLinks: true })
      if (skipped.length > 0) this.#ctx?.log.warn('links in a state directory were left out of its checkpoint', { skipped: skipped.slice(0, 10) })
      await writeArchive(tmp, entries)
      const put = await this.store.putFile(tmp)
      if (o.pin !== false) this.store.pin(put.digest)
      this.announce(put.digest)
      return put
    } finally {
      rmSync(tmp, { force: true })
    }
  }

  /** Unpacks a state archive (fetched and digest-checked) into a fresh state directory; its paths stay inside it. */
  async unpackState(digest: string, dir: string, o: { from: string[] }): Promise<void> {
    const archive = await this.file(digest, o)
    // unpacked beside it (the unpacker wants a fresh folder), then moved in: the folder itself keeps its mode
    const tmp = `${dir}.restore-${randomBytes(6).toString('hex')}`
    try {
      await unpackArchive(archive, tmp, { maxBytes: MAX_STATE_BYTES })
      for (const name of readdirSync(tmp)) renameSync(join(tmp, name), join(dir, name))
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  }

  /** When a run ends: packs a job's output folder as an artifact and signs the run's provenance record. */
  async runEnded(r: RunEnded): Promise<void> {
    const ctx = this.#ctx
    if (!ctx) return
    let output: string | null = null
    if (r.outputDir && existsSync(r.outputDir)) {
      const tmp = join(tmpdir(), `noir-output-${randomBytes(8).toString('hex')}.tar`)
      try {
        const { entries, skipped } = walkFolder(r.outputDir, { skipLinks: true })
        if (skipped.length > 0) ctx.log.warn('links in an output folder were left out', { contractId: r.contractId, skipped: skipped.slice(0, 10) })
        await writeArchive(tmp, entries)
        output = (await this.store.putFile(tmp)).digest
        this.store.pin(output)
        this.announce(output)
      } finally {
        rmSync(tmp, { force: true })
      }
    }
    const body: ProvenanceBody = {
      v: 1, contractId: r.contractId, node: ctx.did, consumer: r.consumer, workload: workloadDigest(r.workload), artifacts: r.artifacts,
      startedAt: r.startedAt, endedAt: Math.max(r.startedAt, r.endedAt), exit: { state: r.state, code: r.code, ...(r.reason ? { reason: r.reason.slice(0, 500) } : {}) }, output,
    }
    const rec = signProvenance(ctx.key, body)
    await ctx.store.put(PROVENANCE_KEY(r.contractId), jsonCopy(rec))
    ctx.log.info('provenance signed', { contractId: r.contractId, output })
  }

  /** The record of `contractId`, sent only to its consumer (deny by default: anyone else is told there is none). */
  async #provenanceFor(contractId: string, peer: PeerId): Promise<Uint8Array> {
    const rec = (await this.#ctx!.store.get(PROVENANCE_KEY(contractId))) as ProvenanceRecord | undefined
    if (!rec || didOfPeer(peer) !== rec.body.consumer) throw new ArtifactNotFoundError(`no provenance record of contract ${contractId} for you`)
    return Buffer.from(JSON.stringify(rec))
  }

  /**
   * The consumer's side: fetches the provider's record of `contractId`, checks the provider's signature and
   * that it names this node and that provider, countersigns it and keeps it. A record kept already is returned.
   */
  async collect(contractId: string, provider: string): Promise<ProvenanceRecord> {
    const ctx = this.#ctx!
    const kept = (await ctx.store.get(PROVENANCE_KEY(`c:${contractId}`))) as ProvenanceRecord | undefined
    if (kept) return kept
    const raw = await fetchProvenance(this.#host, peerIdFromDid(provider), contractId, { signal: ctx.signal })
    const rec = verifyProvenance(raw, { countersigned: false })
    if (rec.body.contractId !== contractId || rec.body.node !== provider || rec.body.consumer !== ctx.did) {
      throw new InvalidProvenanceError(`the record ${provider} sent is not of contract ${contractId} between it and this node`)
    }
    const signed = countersignProvenance(ctx.key, rec)
    await ctx.store.put(PROVENANCE_KEY(`c:${contractId}`), jsonCopy(signed))
    return signed
  }

  status(): JsonValue {
    const s = this.#store
    return jsonCopy({ ...this.stats, held: s?.list().length ?? 0, usedBytes: s?.usedBytes() ?? 0, maxBytes: s?.maxBytes ?? 0 })
  }

  routes(): ApiRoute[] {
    const digestOf = (v: unknown): string => {
      if (!isDigest(v)) throw new InvalidRequestError('digest must be sha256:<64 hex>')
      return v
    }
    const didList = (v: unknown): string[] => {
      if (v === undefined) return []
      if (!Array.isArray(v) || v.length > 16 || !v.every((d) => typeof d === 'string' && d.startsWith('did:key:'))) throw new InvalidRequestError('from must be a list of at most 16 did:keys')
      return v as string[]
    }
    const body = (b: unknown): Record<string, unknown> => (b && typeof b === 'object' && !Array.isArray(b) ? (b as Record<string, unknown>) : {})
    return [
      { method: 'GET', path: '/v1/artifacts', handler: () => jsonCopy(this.store.list()) },
      {
        method: 'POST', path: '/v1/artifacts/announce', handler: (req) => {
          const ds = body(req.body).digests
          if (!Array.isArray(ds) || ds.length > 64) throw new InvalidRequestError('digests must be a list of at most 64 digests')
          for (const d of ds) if (!this.store.has(digestOf(d))) throw new ArtifactNotFoundError(`artifact ${String(d)} is not in this node's store`)
          for (const d of ds as string[]) {
            this.store.pin(d)
            this.announce(d)
          }
          return { announced: ds.length }
        },
      },
      {
        method: 'POST', path: '/v1/artifacts/fetch', handler: async (req) => {
          const b = body(req.body)
          const d = digestOf(b.digest)
          await this.file(d, { from: didList(b.from) })
          return { digest: d, bytes: this.store.list().find((a) => a.digest === d)?.bytes ?? 0 }
        },
      },
      {
        method: 'POST', path: '/v1/provenance/collect', handler: async (req) => {
          const b = body(req.body)
          if (typeof b.contractId !== 'string' || b.contractId.length === 0 || b.contractId.length > 128) throw new InvalidRequestError('contractId is needed')
          const provider = didList([b.provider])[0]!
          return jsonCopy(await this.collect(b.contractId, provider))
        },
      },
      {
        method: 'GET', path: '/v1/provenance/:contractId', handler: async (req) => {
          const rec = (await this.#ctx!.store.get(PROVENANCE_KEY(`c:${req.params.contractId}`))) ?? (await this.#ctx!.store.get(PROVENANCE_KEY(req.params.contractId!)))
          if (!rec) throw new ArtifactNotFoundError(`no provenance record of contract ${req.params.contractId} on this node`)
          return jsonCopy(rec)
        },
      },
    ]
  }
}
