/**
 * A rendition choice that knows what other tabs hold (P2P mode).
 *
 * hls.js picks each segment's rendition from its bandwidth estimate, which
 * is mostly an estimate of the link to storage, taken from a tab's first
 * segments — while the engine is starting, on a busy machine, it can be
 * low for reasons that do not last. A tab that settles on a rendition no
 * other tab plays takes every segment from storage, and the tabs after it
 * follow it there (a bench run: 64 % tab to tab instead of 74 %).
 *
 * So when the buffer is healthy and a tab we are connected to holds the
 * next segment of a higher rendition whole, that rendition is asked for
 * instead (hls.js's `nextAutoLevel`, for one segment; hls.js chooses again
 * for the next). The estimate that matters then is that of the link to the
 * other tabs: measured on every segment they send, and a higher rendition
 * is taken only while that link carries it with a margin. A viewer's
 * pinned rendition and hls.js's level capping are kept as they are.
 */
import { bufferedAhead, segmentOf, wallClockS } from './hls-p2p.ts'
import type { P2PEngine } from './engine.ts'
import type { HlsTrace } from './hls-p2p.ts'
import type Hls from 'hls.js'
import type { FragBufferedData } from 'hls.js'

/** Least buffered, in wall-clock seconds, to take a higher rendition from another tab. */
export const PEER_LEVEL_MIN_BUFFER_S = 2
/** The link to other tabs must carry this many times a rendition's bitrate. */
export const PEER_LEVEL_BANDWIDTH_MARGIN = 1.5
/** Weight of the newest sample in the link's estimate. */
const PEER_RATE_NEW_SAMPLE_WEIGHT = 0.5
const PLAYLIST_TIMEOUT_MS = 5_000

/** One segment of a media playlist: where it starts (s), how long it is (s), its dsm file. */
export interface PlaylistSegment { start: number, duration: number, id: string }

/** The segments of a VOD media playlist whose URIs are dsm segment files. */
export function parseMediaPlaylist (text: string, base: string): PlaylistSegment[] {
  const out: PlaylistSegment[] = []
  let start = 0
  let duration: number | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('#EXTINF:')) {
      duration = Number.parseFloat(line.slice('#EXTINF:'.length))
    } else if (line !== '' && !line.startsWith('#') && duration != null && Number.isFinite(duration)) {
      const seg = segmentOf(new URL(line, base).href)
      if (seg != null) out.push({ start, duration, id: seg.id })
      start += duration
      duration = undefined
    }
  }
  return out
}

/** The segment playing at `t` seconds (undefined past the end). */
export function segmentAt (segments: PlaylistSegment[], t: number): PlaylistSegment | undefined {
  // hls.js looks a fragment up with a tolerance of a quarter second; so do we.
  return segments.find(s => t + 0.25 >= s.start && t + 0.25 < s.start + s.duration)
}

/** The link to other tabs, as measured on the segments they sent (bits per second). */
export class PeerRate {
  private estimate?: number

  /** A segment of `bytes` came from other tabs in `ms`. */
  sample (bytes: number, ms: number): void {
    const bps = bytes * 8 / (Math.max(1, ms) / 1000)
    this.estimate = this.estimate == null ? bps : this.estimate * (1 - PEER_RATE_NEW_SAMPLE_WEIGHT) + bps * PEER_RATE_NEW_SAMPLE_WEIGHT
  }

  /** A segment a connected tab held did not come from it in time. */
  miss (): void {
    this.estimate = 0
  }

  /** Undefined before any segment came from other tabs. */
  get bps (): number | undefined { return this.estimate }
}

export interface PeerLevelsOptions {
  engine: () => P2PEngine | undefined
  media: HTMLMediaElement
  rate: PeerRate
  trace?: (t: HlsTrace) => void
}

/** Wire the choice into an hls.js instance (`HlsClass`: the hls.js module the page loaded). */
export function preferPeerLevels (hls: Hls, HlsClass: typeof Hls, o: PeerLevelsOptions): void {
  const playlists = new Map<number, PlaylistSegment[]>()
  const asked = new Set<number>()
  let started = false
  o.media.addEventListener('playing', () => { started = true }, { once: true })

  /** A rendition's segments, from its playlist (fetched once, after the first frame). */
  const segmentsOf = (level: number): PlaylistSegment[] | undefined => {
    const known = playlists.get(level)
    if (known != null || asked.has(level)) return known
    asked.add(level)
    const url = hls.levels[level]?.uri
    if (url != null && url !== '') {
      void fetch(url, { signal: AbortSignal.timeout(PLAYLIST_TIMEOUT_MS) })
        .then(async res => { if (res.ok) playlists.set(level, parseMediaPlaylist(await res.text(), res.url)) })
        .catch(() => { asked.delete(level) })
    }
    return undefined
  }

  hls.on(HlsClass.Events.FRAG_BUFFERED, (_e: string, data: FragBufferedData) => {
    const engine = o.engine()
    if (!started || engine == null || !hls.autoLevelEnabled || data.frag.type !== 'main' || typeof data.frag.sn !== 'number') return
    const levels = hls.levels
    const current = levels[data.frag.level]
    if (current == null) return
    const ahead = bufferedAhead(o.media)
    const end = o.media.currentTime + ahead
    const higher = levels.map((l, i) => ({ l, i })).filter(x => x.l.height > 0 && x.l.bitrate > current.bitrate).sort((a, b) => b.l.bitrate - a.l.bitrate)
    // The swarms of the higher renditions' next two segments: their holders are known when they are needed.
    for (const { i } of higher) {
      const segs = segmentsOf(i)
      const next = segs != null ? segmentAt(segs, end) : undefined
      if (segs == null || next == null) continue
      for (const s of [next, segmentAt(segs, next.start + next.duration)]) {
        if (s != null) engine.prepare(s.id).catch(() => {})
      }
    }
    const slack = wallClockS(o.media, ahead)
    if (slack < PEER_LEVEL_MIN_BUFFER_S) return
    const chosen = hls.nextAutoLevel
    const floor = levels[chosen]?.bitrate ?? current.bitrate
    for (const { l, i } of higher) {
      if (l.bitrate <= floor) break
      const link = o.rate.bps
      if (link != null && link < l.bitrate * PEER_LEVEL_BANDWIDTH_MARGIN) continue
      const seg = segmentAt(playlists.get(i) ?? [], end)
      if (seg == null || !engine.holders(seg.id).some(h => h.connected)) continue
      hls.nextAutoLevel = i
      o.trace?.({ rendition: `${l.height}p`, id: seg.id, sn: data.frag.sn + 1, from: 'switch', why: `held by a connected tab; hls.js chose ${levels[chosen]?.height ?? '?'}p at ${Math.round(hls.bandwidthEstimate / 1000)} kbps, tabs' link ${link == null ? 'untried' : `${Math.round(link / 1000)} kbps`}`, slackS: slack, ms: 0, at: o.media.currentTime })
      return
    }
  })
}
