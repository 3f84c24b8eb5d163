/**
 * HLS segments through the tab's P2P engine: an hls.js fragment loader.
 * Every segment and init segment of a dsm package is a dsm file of its own
 * (`/files/<source>/hls/<rendition>/<file id>.m4s`), so the engine shares
 * them like any file: verified chunk by chunk, kept in the tab's cache and
 * announced to the file's swarm.
 *
 * A segment comes from other tabs when one that we are connected to holds
 * it whole — within a deadline set by what the player has buffered, else
 * from storage over HTTP; a segment no tab holds comes over HTTP, and is
 * then offered to the engine so other tabs can take it from us. Before the
 * engine is up, every segment comes over HTTP: P2P never starts slower than
 * HTTP, and never waits where HTTP would not (p2p-media-loader's rule). The
 * swarms of the next few segments are looked up while the current one
 * loads, so the holders are known when they are needed.
 */
import { concat } from 'uint8arrays/concat'
import type { P2PEngine } from './engine.ts'
import type { FragmentLoaderContext, Loader, LoaderCallbacks, LoaderConfiguration, LoaderContext, LoaderStats } from 'hls.js'

const SEGMENT = /\/files\/[^/]+\/hls\/([^/]+)\/([a-z0-9]+)\.(?:m4s|mp4)$/
/** Segments ahead of the one loading whose swarms are looked up. */
export const PREPARE_AHEAD_SEGMENTS = 3
/** Time a segment may take from other tabs: what is buffered less this margin, within these bounds. */
const PEER_DEADLINE_MARGIN_S = 1.5
const MIN_PEER_DEADLINE_MS = 800
/** Longest wait for a segment's swarm to be asked (its playlist just came in). */
const MAX_SWARM_WAIT_MS = 500
/** Below this much buffered, a segment is not worth waiting for a connection to another tab. */
const URGENT_BUFFER_S = 2
const MAX_PEER_DEADLINE_MS = 8_000

/** Segment bytes per rendition, by where they came from. */
export type HlsShare = Record<string, { peers: number, storage: number }>

export interface HlsP2POptions {
  /** The engine once it is up (undefined before: HTTP). */
  engine: () => P2PEngine | undefined
  media: HTMLMediaElement
  /** URLs of the segments after `sn` in rendition `level`. */
  upcoming: (level: number, sn: number) => string[]
  share: HlsShare
  /** Measures the link to other tabs on every segment they send (the rendition choice reads it). */
  rate?: { sample: (bytes: number, ms: number) => void, miss: () => void }
  /** Told where each segment came from and why (the bench prints it). */
  trace?: (t: HlsTrace) => void
}

/** One segment's load: from `peers` or `storage`, and why when from storage; or a `switch` to a rendition other tabs hold. */
export interface HlsTrace { rendition: string, id: string, sn: number, from: 'loading' | 'peers' | 'storage' | 'switch', why: string, slackS: number, ms: number, at: number }

type LoaderClass = new (config: unknown) => Loader<LoaderContext>

function newStats (): LoaderStats {
  const t = { start: 0, first: 0, end: 0 }
  return { aborted: false, loaded: 0, retry: 0, total: 0, chunkCount: 0, bwEstimate: 0, loading: { ...t }, parsing: { start: 0, end: 0 }, buffering: { ...t } }
}

/** Seconds buffered ahead of the playhead. */
export function bufferedAhead (media: HTMLMediaElement): number {
  const t = media.currentTime
  for (let i = 0; i < media.buffered.length; i++) {
    if (media.buffered.start(i) <= t + 0.1 && media.buffered.end(i) > t) return media.buffered.end(i) - t
  }
  return 0
}

/** `mediaS` seconds of media in wall-clock seconds at the playback rate (at 4× speed, 8 s buffered is 2 s). */
export function wallClockS (media: HTMLMediaElement, mediaS: number): number {
  return mediaS / (media.playbackRate > 0 ? media.playbackRate : 1)
}

async function * pieces (body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      yield value
    }
  } finally {
    reader.releaseLock()
  }
}

/** The pieces as one array; `stats.loading.first` set when the first one comes, `stats.loaded` as they come. */
async function collect (pieces: AsyncIterable<Uint8Array>, stats: LoaderStats): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of pieces) {
    if (parts.length === 0) stats.loading.first = performance.now()
    parts.push(p)
    stats.loaded += p.byteLength
  }
  return concat(parts)
}

/** The segment's number in its playlist (-1: an init segment). */
function snOf (context: LoaderContext): number {
  const sn = (context as Partial<FragmentLoaderContext>).frag?.sn
  return typeof sn === 'number' ? sn : -1
}

export function segmentOf (url: string): { rendition: string, id: string } | undefined {
  const m = SEGMENT.exec(new URL(url, location.href).pathname)
  return m?.[1] != null && m[2] != null ? { rendition: m[1], id: m[2] } : undefined
}

/** hls.js's `fLoader`: segments through the engine where that helps, everything else by hls.js's own loader. */
export function hlsFragmentLoader (Default: LoaderClass, o: HlsP2POptions): LoaderClass {
  /** Work queued until the player shows its first frame, then run when the page is idle. */
  let started = false
  const queued: Array<() => void> = []
  const idle = (fn: () => void): void => { typeof requestIdleCallback === 'function' ? requestIdleCallback(fn, { timeout: 1_000 }) : setTimeout(fn, 0) }
  const afterStart = (fn: () => void): void => { if (started) idle(fn); else queued.push(fn) }
  o.media.addEventListener('playing', () => {
    started = true
    for (const fn of queued.splice(0)) idle(fn)
  }, { once: true })
  return class P2PFragmentLoader implements Loader<LoaderContext> {
    context: LoaderContext | null = null
    private readonly config: unknown
    private inner?: Loader<LoaderContext>
    /**
     * The one stats object of this load: hls.js takes `loader.stats` before it calls load() and reads that
     * object from then on (the fragment's stats, its bandwidth samples, its abandon rule). A fresh object
     * made in load() — as before — left hls.js reading zeros: its estimate never moved in P2P mode.
     */
    private readonly own = newStats()
    private controller?: AbortController
    private destroyed = false
    /** hls.js's load policy is the loader's to enforce: no first bytes, or no whole segment, in time is a timeout (hls.js retries). */
    private timers: Array<ReturnType<typeof setTimeout>> = []
    private timedOut = false
    private firstByte?: ReturnType<typeof setTimeout>

    constructor (config: unknown) {
      this.config = config
    }

    get stats (): LoaderStats { return this.own }

    load (context: LoaderContext, config: LoaderConfiguration, callbacks: LoaderCallbacks<LoaderContext>): void {
      const seg = segmentOf(context.url)
      const engine = o.engine()
      // (A byte range of a segment — rangeEnd set — is not a whole file: hls.js's own loader takes it.)
      if (seg == null || engine == null || (context.rangeEnd ?? 0) > 0) {
        if (seg != null) o.trace?.({ rendition: seg.rendition, id: seg.id, sn: snOf(context), from: 'storage', why: engine == null ? 'engine not up' : 'byte range', slackS: 0, ms: 0, at: o.media.currentTime })
        this.inner = new Default(this.config)
        this.inner.stats = this.own
        this.inner.load(context, config, callbacks)
        return
      }
      // Nothing to wait for (no tab we are connected to holds it, and too little buffered to wait for a link, or
      // an init segment): from storage by hls.js's own loader, the very path of HTTP mode. Through fetch() here,
      // each first segment of a bench trace came 10–20 ms later than over HTTP.
      const sn = snOf(context)
      const slack = sn < 0 ? 0 : this.slackS(context as FragmentLoaderContext)
      const holders = engine.holders(seg.id)
      if ((sn < 0 || slack < URGENT_BUFFER_S) && !holders.some(h => h.connected)) {
        this.fromStorage(engine, seg, sn, slack, holders.length === 0 ? 'no holder known' : 'holder not connected, urgent', context, config, callbacks)
        return
      }
      this.context = context
      this.controller = new AbortController()
      this.expire(config.loadPolicy?.maxLoadTimeMs ?? config.timeout)
      // The first bytes: the peers' bounded time, then hls.js's own limit for an HTTP response to start.
      this.firstByte = this.expire((config.loadPolicy?.maxTimeToFirstByteMs ?? config.timeout) + MAX_SWARM_WAIT_MS + MAX_PEER_DEADLINE_MS)
      o.trace?.({ rendition: seg.rendition, id: seg.id, sn: snOf(context), from: 'loading', why: '', slackS: 0, ms: 0, at: o.media.currentTime })
      void this.fetch(engine, seg, context as FragmentLoaderContext, callbacks, this.controller.signal)
    }

    private async fetch (engine: P2PEngine, seg: { rendition: string, id: string }, context: FragmentLoaderContext, callbacks: LoaderCallbacks<LoaderContext>, signal: AbortSignal): Promise<void> {
      const stats = this.own
      stats.loading.start = performance.now()
      const share = (o.share[seg.rendition] ??= { peers: 0, storage: 0 })
      try {
        // How long until the player needs it: what is buffered, or — a segment further on — its start.
        // An init segment (a kilobyte or two) never waits for other tabs: it comes from one we are connected
        // to, or over HTTP at once. One that waited for a link arrived after hls.js had switched away from
        // its rendition, and hls.js appended it anyway: playback stopped for good (a bench run, twice).
        // In wall-clock seconds: at 4× speed, 8 s buffered is 2 s.
        const sn = snOf(context)
        const slack = sn < 0 ? 0 : this.slackS(context)
        const began = performance.now()
        const why = { text: '' }
        let bytes = await this.fromPeers(engine, seg.id, signal, share, stats, slack, why)
        if (bytes != null) clearTimeout(this.firstByte)
        o.trace?.({ rendition: seg.rendition, id: seg.id, sn, from: bytes == null ? 'storage' : 'peers', why: why.text, slackS: slack, ms: performance.now() - began, at: o.media.currentTime })
        if (bytes == null) {
          stats.loading.start = performance.now()
          stats.loaded = 0
          const res = await fetch(context.url, { signal })
          clearTimeout(this.firstByte)
          stats.loading.first = performance.now()
          if (!res.ok || res.body == null) {
            stats.loading.end = performance.now()
            callbacks.onError({ code: res.status, text: res.statusText }, context, null, stats)
            return
          }
          stats.total = Number(res.headers.get('content-length') ?? 0)
          // Read as it comes, so that hls.js sees the progress (its abandon rule judges a slow load by it).
          bytes = await collect(pieces(res.body), stats)
          share.storage += bytes.byteLength
          // Ours to share from now on (verified against the file's manifest first) — hashed once the
          // player has started, off the path to the first frame.
          const held = bytes
          afterStart(() => { engine.offer(seg.id, held).catch(() => {}) })
        }
        this.prepareAhead(engine, context.frag.level, sn)
        this.done()
        // hls.js's bandwidth estimate is bytes over the time after the first byte: a loading.first set
        // at the end (as it was) made every transfer look like waiting, and the estimate meaningless.
        stats.loading.end = performance.now()
        stats.loaded = stats.total = bytes.byteLength
        callbacks.onSuccess({ url: context.url, data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) }, stats, context, null)
      } catch (err) {
        this.done()
        stats.loading.end = performance.now()
        if (this.timedOut) {
          if (!this.destroyed) callbacks.onTimeout(stats, context, null)
        } else if (signal.aborted) {
          stats.aborted = true
          if (!this.destroyed) callbacks.onAbort?.(stats, context, null)
        } else {
          callbacks.onError({ code: 0, text: err instanceof Error ? err.message : String(err) }, context, null, stats)
        }
      }
    }

    /** Wall-clock seconds until the player needs the segment: what is buffered, or — a segment further on — its start. */
    private slackS (context: FragmentLoaderContext): number {
      return wallClockS(o.media, Math.max(bufferedAhead(o.media), context.frag.start - o.media.currentTime))
    }

    /** The swarms of the next segments, looked up once the player has started (off the path to the first frame). */
    private prepareAhead (engine: P2PEngine, level: number, sn: number): void {
      for (const url of o.upcoming(level, sn).slice(0, PREPARE_AHEAD_SEGMENTS)) {
        const next = segmentOf(url)
        if (next != null) afterStart(() => { engine.prepare(next.id).catch(() => {}) })
      }
    }

    /** By hls.js's own loader (its stats are ours); the bytes counted and then offered to other tabs. */
    private fromStorage (engine: P2PEngine, seg: { rendition: string, id: string }, sn: number, slack: number, why: string, context: LoaderContext, config: LoaderConfiguration, callbacks: LoaderCallbacks<LoaderContext>): void {
      o.trace?.({ rendition: seg.rendition, id: seg.id, sn, from: 'storage', why, slackS: slack, ms: 0, at: o.media.currentTime })
      const share = (o.share[seg.rendition] ??= { peers: 0, storage: 0 })
      this.inner = new Default(this.config)
      this.inner.stats = this.own
      this.inner.load(context, config, {
        ...callbacks,
        onSuccess: (response, stats, ctx, details) => {
          if (response.data instanceof ArrayBuffer) {
            share.storage += response.data.byteLength
            // A copy: hls.js may hand its buffer to the transmuxer's worker (detached here). Hashed and
            // offered once the player has started.
            const held = new Uint8Array(response.data.slice(0))
            afterStart(() => { engine.offer(seg.id, held).catch(() => {}) })
          }
          if (sn >= 0) this.prepareAhead(engine, (context as FragmentLoaderContext).frag.level, sn)
          callbacks.onSuccess(response, stats, ctx, details)
        }
      })
    }

    /**
     * The segment from other tabs, when one holds it whole and it arrives in
     * time; else undefined. With little buffered, only a tab we are
     * connected to is asked; with more, we may wait for the connection to a
     * holder the swarm is dialing — within the same deadline.
     */
    private async fromPeers (engine: P2PEngine, id: string, signal: AbortSignal, share: { peers: number, storage: number }, stats: LoaderStats, buffered: number, why: { text: string }): Promise<Uint8Array | undefined> {
      const deadline = Math.min(MAX_PEER_DEADLINE_MS, Math.max(MIN_PEER_DEADLINE_MS, (buffered - PEER_DEADLINE_MARGIN_S) * 1000))
      const within = AbortSignal.any([signal, AbortSignal.timeout(deadline)])
      let holders = engine.holders(id)
      // Not urgent, and its swarm not asked yet (its playlist just came in): asking is worth the wait.
      if (holders.length === 0 && buffered >= URGENT_BUFFER_S) {
        await engine.known(id, { signal: AbortSignal.any([within, AbortSignal.timeout(MAX_SWARM_WAIT_MS)]) }).catch(() => {})
        if (signal.aborted) throw signal.reason
        holders = engine.holders(id)
      }
      const connected = holders.some(h => h.connected)
      why.text = holders.length === 0 ? 'no holder known' : connected ? '' : 'holder not connected, urgent'
      if (holders.length === 0 || (!connected && buffered < URGENT_BUFFER_S)) return undefined
      if (!connected) {
        // Segments that need the same tab wait on the same dial, each within its own deadline; with no
        // dial under way (the last one failed) there is nothing to wait for until the next announce.
        why.text = 'no connection within the deadline'
        if (!await engine.connectedTo(holders.map(h => h.peerId), { signal: within })) {
          if (signal.aborted) throw signal.reason
          return undefined
        }
      }
      why.text = ''
      const before = { peers: engine.stats.fromPeers, storage: engine.stats.fromStorage }
      // hls.js estimates bandwidth from the transfer: the wait for a peer is not the link's slowness.
      stats.loading.start = performance.now()
      try {
        const manifest = await engine.manifest(id, { signal })
        stats.loaded = 0
        stats.total = manifest.size
        const bytes = await collect(engine.read(id, 0, manifest.size, { signal: within }), stats)
        o.rate?.sample(bytes.byteLength, performance.now() - stats.loading.start)
        share.peers += engine.stats.fromPeers - before.peers
        share.storage += engine.stats.fromStorage - before.storage
        return bytes
      } catch (err) {
        if (signal.aborted) throw err
        o.rate?.miss()
        why.text = `read: ${err instanceof Error ? err.message : String(err)} (deadline ${deadline} ms)`
        return undefined
      }
    }

    /** After `ms`, the load is a timeout. */
    private expire (ms: number): ReturnType<typeof setTimeout> {
      const t = setTimeout(() => {
        this.timedOut = true
        this.controller?.abort(new Error(`segment not loaded within ${ms} ms`))
      }, ms)
      this.timers.push(t)
      return t
    }

    private done (): void {
      for (const t of this.timers) clearTimeout(t)
      this.timers = []
    }

    abort (): void {
      this.done()
      this.controller?.abort()
      this.inner?.abort()
    }

    /** No callbacks after this (hls.js destroys a loader from inside its abort callback: abort here would recurse). */
    destroy (): void {
      this.done()
      this.destroyed = true
      this.controller?.abort()
      this.inner?.destroy()
      this.inner = undefined
    }
  }
}
