/**
 * HLS playlists: reading the media playlists ffmpeg writes, writing them
 * again with dsm's own URIs, and writing the master playlist (ffmpeg 4.1
 * crashes writing a VOD master itself, and its BANDWIDTH would be a guess:
 * ours is measured from the segments). CODECS comes from the init segment's
 * avcC box (profile, constraints, level: RFC 6381) and AAC-LC's mp4a.40.2.
 */
import { TranscodeError } from '../errors.ts'

export interface MediaSegment { uri: string, durationS: number }
export interface MediaPlaylist { map?: string, targetDurationS: number, segments: MediaSegment[] }

/** AAC-LC, the profile ffmpeg's aac encoder makes. */
export const AAC_LC = 'mp4a.40.2'

/** Read a VOD media playlist: its init map, target duration and segments. */
export function parseMediaPlaylist (text: string): MediaPlaylist {
  const lines = text.split(/\r?\n/).map(l => l.trim()).filter(l => l !== '')
  if (lines[0] !== '#EXTM3U') throw new TranscodeError('not an HLS playlist (no #EXTM3U)')
  const segments: MediaSegment[] = []
  let map: string | undefined
  let target = 0
  let pending: number | undefined
  for (const line of lines.slice(1)) {
    if (line.startsWith('#EXTINF:')) {
      pending = Number.parseFloat(line.slice('#EXTINF:'.length))
      if (!Number.isFinite(pending) || pending < 0) throw new TranscodeError(`bad segment duration in "${line}"`)
    } else if (line.startsWith('#EXT-X-TARGETDURATION:')) {
      target = Number(line.slice('#EXT-X-TARGETDURATION:'.length))
    } else if (line.startsWith('#EXT-X-MAP:')) {
      map = /URI="([^"]+)"/.exec(line)?.[1]
    } else if (!line.startsWith('#')) {
      if (pending == null) throw new TranscodeError(`segment ${line} has no #EXTINF`)
      segments.push({ uri: line, durationS: pending })
      pending = undefined
    }
  }
  if (segments.length === 0) throw new TranscodeError('the playlist has no segments')
  return { ...(map != null ? { map } : {}), targetDurationS: target, segments }
}

/** A VOD media playlist over `segments` (URIs as given), fMP4 with `map` as its init segment. */
export function writeMediaPlaylist (map: string, segments: MediaSegment[]): string {
  const target = Math.max(1, ...segments.map(s => Math.ceil(s.durationS)))
  return [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${target}`,
    '#EXT-X-MEDIA-SEQUENCE:0',
    '#EXT-X-PLAYLIST-TYPE:VOD',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    `#EXT-X-MAP:URI="${map}"`,
    ...segments.flatMap(s => [`#EXTINF:${s.durationS.toFixed(6)},`, s.uri]),
    '#EXT-X-ENDLIST',
    ''
  ].join('\n')
}

/** Every URI a playlist names (segments, the init map, variant playlists), in order. */
export function playlistUris (text: string): string[] {
  const out: string[] = []
  for (const line of text.split(/\r?\n/)) {
    const l = line.trim()
    if (l === '') continue
    if (!l.startsWith('#')) out.push(l)
    else for (const m of l.matchAll(/URI="([^"]+)"/g)) if (m[1] != null) out.push(m[1])
  }
  return out
}

/** The same playlist with `query` ("expires=…&sig=…") added to every URI it names: a signed playlist's segments are signed too. */
export function withQuery (text: string, query: string): string {
  if (query === '') return text
  const add = (uri: string): string => `${uri}${uri.includes('?') ? '&' : '?'}${query}`
  return text.split('\n').map(line => {
    const l = line.trim()
    if (l === '') return line
    if (!l.startsWith('#')) return add(l)
    return line.replace(/URI="([^"]+)"/g, (_m, uri: string) => `URI="${add(uri)}"`)
  }).join('\n')
}

/** RFC 6381 codec of an H.264 init segment: avc1.PPCCLL from its avcC box. */
export function avcCodec (init: Uint8Array): string {
  const tag = Buffer.from('avcC')
  const at = Buffer.from(init.buffer, init.byteOffset, init.byteLength).indexOf(tag)
  if (at < 0 || at + 8 > init.byteLength) throw new TranscodeError('the init segment has no avcC box')
  // avcC: configurationVersion, AVCProfileIndication, profile_compatibility, AVCLevelIndication.
  const hex = (b: number | undefined): string => (b ?? 0).toString(16).padStart(2, '0')
  return `avc1.${hex(init[at + 5])}${hex(init[at + 6])}${hex(init[at + 7])}`
}

export interface VariantStats {
  /** Its media playlist's URI, relative to the master. */
  uri: string
  /** Peak: the largest segment's bits over its duration (plus nothing: audio is muxed in). */
  bandwidth: number
  averageBandwidth: number
  codecs: string
  width?: number
  height?: number
  frameRate?: number
}

/** Peak and average bit/s of segments of `bytes` and `durationS`. */
export function bandwidthOf (segments: Array<{ bytes: number, durationS: number }>): { peak: number, average: number } {
  let peak = 0
  let bits = 0
  let seconds = 0
  for (const s of segments) {
    if (s.durationS > 0) peak = Math.max(peak, s.bytes * 8 / s.durationS)
    bits += s.bytes * 8
    seconds += s.durationS
  }
  return { peak: Math.ceil(peak), average: Math.ceil(seconds > 0 ? bits / seconds : 0) }
}

/** The master playlist: video variants highest first, then audio-only ones. */
export function writeMasterPlaylist (variants: VariantStats[]): string {
  const sorted = [...variants].sort((a, b) => Number(a.height == null) - Number(b.height == null) || b.bandwidth - a.bandwidth)
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS']
  for (const v of sorted) {
    const attrs = [
      `BANDWIDTH=${v.bandwidth}`,
      `AVERAGE-BANDWIDTH=${v.averageBandwidth}`,
      `CODECS="${v.codecs}"`,
      ...(v.width != null && v.height != null ? [`RESOLUTION=${v.width}x${v.height}`] : []),
      ...(v.frameRate != null ? [`FRAME-RATE=${v.frameRate.toFixed(3)}`] : [])
    ]
    lines.push(`#EXT-X-STREAM-INF:${attrs.join(',')}`, v.uri)
  }
  return lines.join('\n') + '\n'
}
