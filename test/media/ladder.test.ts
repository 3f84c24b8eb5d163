/**
 * The pure parts of the ladder: which renditions a source gets, the
 * playlists dsm reads and writes, progress as ffmpeg reports it, and the
 * storyboard's WebVTT track.
 */
import { describe, expect, it } from 'vitest'
import { planLadder } from '../../src/media/ladder.ts'
import { avcCodec, bandwidthOf, parseMediaPlaylist, playlistUris, withQuery, writeMasterPlaylist, writeMediaPlaylist } from '../../src/media/playlist.ts'
import { toProgress } from '../../src/media/ffmpeg.ts'
import { planStoryboard, storyboardVtt } from '../../src/media/preview.ts'

const audio = { codec: 'aac', channels: 2, sampleRate: 48000 }

describe('the ladder', () => {
  it('takes the standard heights up to the source\'s, never upscaling, plus audio only', () => {
    const ladder = planLadder({ durationS: 60, video: { codec: 'h264', width: 1920, height: 1080, fps: 30 }, audio })
    expect(ladder.map(r => r.name)).toEqual(['1080p', '720p', '480p', '360p', '240p', 'audio'])
    expect(ladder[1]).toMatchObject({ kind: 'video', width: 1280, height: 720, audioKbps: 128, fps: 30 })
    expect(ladder.every(r => r.kind === 'audio' || (r.width % 2 === 0 && r.height % 2 === 0))).toBe(true)
    const small = planLadder({ durationS: 30, video: { codec: 'h264', width: 640, height: 360, fps: 25 }, audio })
    expect(small.map(r => r.name)).toEqual(['360p', '240p', 'audio'])
    expect(small[1]).toMatchObject({ width: 426, height: 240 })
  })

  it('keeps a portrait video upright, caps bitrates at the source\'s, halves high frame rates', () => {
    const portrait = planLadder({ durationS: 10, video: { codec: 'h264', width: 720, height: 1280, fps: 120, bitRate: 600_000 } })
    expect(portrait[0]).toMatchObject({ name: '720p', width: 720, height: 1280, fps: 60, videoKbps: 900, audioKbps: 0 })
    expect(portrait.some(r => r.kind === 'audio')).toBe(false)
  })

  it('gives a tiny source one rendition at its own size, and an audio file audio only', () => {
    expect(planLadder({ durationS: 5, video: { codec: 'vp8', width: 320, height: 180, fps: 30 } }).map(r => [r.name, r.kind === 'video' ? r.height : 0])).toEqual([['180p', 180]])
    expect(planLadder({ durationS: 5, audio }).map(r => r.name)).toEqual(['audio'])
    expect(planLadder({ durationS: 5, video: { codec: 'h264', width: 1920, height: 1080, fps: 30 } }, { maxVideoRenditions: 2 }).map(r => r.name)).toEqual(['1080p', '720p'])
  })
})

describe('playlists', () => {
  const ffmpegOut = '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4.000000,\nseg_00000.m4s\n#EXTINF:2.500000,\nseg_00001.m4s\n#EXT-X-ENDLIST\n'

  it('reads ffmpeg\'s media playlist and writes it again with other URIs', () => {
    const p = parseMediaPlaylist(ffmpegOut)
    expect(p).toEqual({ map: 'init.mp4', targetDurationS: 4, segments: [{ uri: 'seg_00000.m4s', durationS: 4 }, { uri: 'seg_00001.m4s', durationS: 2.5 }] })
    const text = writeMediaPlaylist('I.mp4', [{ uri: 'A.m4s', durationS: 4 }, { uri: 'B.m4s', durationS: 2.5 }])
    expect(parseMediaPlaylist(text)).toEqual({ map: 'I.mp4', targetDurationS: 4, segments: [{ uri: 'A.m4s', durationS: 4 }, { uri: 'B.m4s', durationS: 2.5 }] })
    expect(playlistUris(text)).toEqual(['I.mp4', 'A.m4s', 'B.m4s'])
    expect(() => parseMediaPlaylist('not a playlist')).toThrow(expect.objectContaining({ name: 'TranscodeError' }))
    expect(() => parseMediaPlaylist('#EXTM3U\nseg.m4s\n')).toThrow(/no #EXTINF/)
  })

  it('signs every URI of a playlist served through a signed URL', () => {
    const signed = withQuery(writeMediaPlaylist('I.mp4', [{ uri: 'A.m4s', durationS: 4 }]), 'expires=9&sig=x')
    expect(playlistUris(signed)).toEqual(['I.mp4?expires=9&sig=x', 'A.m4s?expires=9&sig=x'])
    expect(withQuery('#EXTM3U\nx.m3u8\n', '')).toBe('#EXTM3U\nx.m3u8\n')
  })

  it('measures bandwidth from the segments and writes the master with every attribute', () => {
    expect(bandwidthOf([{ bytes: 500_000, durationS: 4 }, { bytes: 100_000, durationS: 2 }])).toEqual({ peak: 1_000_000, average: 800_000 })
    const master = writeMasterPlaylist([
      { uri: 'audio/index.m3u8', bandwidth: 100_000, averageBandwidth: 97_000, codecs: 'mp4a.40.2' },
      { uri: '240p/index.m3u8', bandwidth: 500_000, averageBandwidth: 400_000, codecs: 'avc1.4d401e,mp4a.40.2', width: 426, height: 240, frameRate: 25 },
      { uri: '360p/index.m3u8', bandwidth: 900_000, averageBandwidth: 800_000, codecs: 'avc1.4d401e,mp4a.40.2', width: 640, height: 360, frameRate: 25 }
    ])
    expect(master.split('\n').filter(l => !l.startsWith('#') && l !== '')).toEqual(['360p/index.m3u8', '240p/index.m3u8', 'audio/index.m3u8'])
    expect(master).toContain('#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=800000,CODECS="avc1.4d401e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=25.000')
  })

  it('reads the H.264 codec string from the init segment\'s avcC box', () => {
    const init = Buffer.concat([Buffer.from('....ftypisom....avcC'), Buffer.from([1, 0x64, 0x00, 0x28, 0xff])])
    expect(avcCodec(init)).toBe('avc1.640028')
    expect(() => avcCodec(Buffer.from('no box here'))).toThrow(/avcC/)
  })
})

describe('ffmpeg progress and the storyboard track', () => {
  it('turns progress blocks into percent, speed and time left', () => {
    const block = new Map([['out_time_us', '15000000'], ['speed', '2.5x'], ['progress', 'continue']])
    expect(toProgress(block, 30)).toEqual({ percent: 50, speed: 2.5, etaS: 6 })
    expect(toProgress(new Map([['out_time_ms', '3000000'], ['speed', 'N/A'], ['progress', 'continue']]), 30)).toEqual({ percent: 10, speed: 0 })
    expect(toProgress(new Map([['out_time', '00:00:30.000000'], ['progress', 'end']]), 30)?.percent).toBe(100)
    expect(toProgress(new Map([['progress', 'continue']]), 30)).toBeUndefined()
  })

  it('tiles thumbnails and points a cue at each', () => {
    const board = planStoryboard({ durationS: 30, video: { codec: 'h264', width: 640, height: 360, fps: 25 } })
    expect(board).toEqual({ intervalS: 2, count: 15, columns: 10, rows: 2, thumbWidth: 160, thumbHeight: 90 })
    const long = planStoryboard({ durationS: 3600, video: { codec: 'h264', width: 1920, height: 1080, fps: 25 } })
    expect(long?.count).toBeLessThanOrEqual(100)
    const vtt = storyboardVtt(board ?? long ?? ({} as never), 30, 'sb.jpg')
    expect(vtt.startsWith('WEBVTT\n')).toBe(true)
    expect(vtt).toContain('00:00:28.000 --> 00:00:30.000\nsb.jpg#xywh=640,90,160,90')
    expect(planStoryboard({ durationS: 30, audio })).toBeUndefined()
  })
})
