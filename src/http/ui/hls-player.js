// Adaptive playback of a video's HLS package: hls.js where the browser has
// Media Source Extensions, the browser's own HLS (Safari) otherwise. Shows
// the rendition in use, lets the viewer pin one, and previews the frame
// under the pointer on the scrub bar from the storyboard (a sprite and its
// WebVTT track). In P2P mode, segments come through the tab's P2P engine.

let HlsClass
/** Seconds of video fetched ahead of the playhead. */
const BUFFER_AHEAD_S = 10

let loading
async function hlsLib () {
  // A failed import is tried again at the next call (a network blip while the page was idle).
  loading ??= import('/ui/hls.min.mjs').then(m => { HlsClass = m.default; return HlsClass }, (err) => { loading = undefined; throw err })
  return loading
}

/** The storyboard's cues: [{ start, end, url, x, y, w, h }]. */
async function storyboard (url) {
  const text = await (await fetch(url)).text()
  const cues = []
  const time = (s) => s.split(':').reduce((a, p) => a * 60 + Number(p), 0)
  for (const block of text.split(/\n\n+/)) {
    const [timing, target] = block.split('\n').filter(l => l.includes('-->') || l.includes('#xywh='))
    if (timing == null || target == null) continue
    const [start, end] = timing.split('-->').map(t => time(t.trim()))
    const [file, frag] = target.split('#xywh=')
    const [x, y, w, h] = frag.split(',').map(Number)
    cues.push({ start, end, url: new URL(file, new URL(url, location.href)).href, x, y, w, h })
  }
  return cues
}

/**
 * `Loader` with an init segment's aborted load ending without a word (no onAbort). hls.js 1.7.4 answers that
 * abort by aborting whatever its fragment loader is loading by then: on a switch of rendition before the
 * first frame, the new rendition's first segment, which it then waits for for ever (FRAG_LOADING, nothing
 * on screen; the flaky P2P test of the last stops). Nothing waits on an init segment it has aborted: the
 * next rendition's init segment has a load of its own.
 */
function quietInitAborts (Loader) {
  return class extends Loader {
    load (context, config, callbacks) {
      super.load(context, config, context.frag?.sn === 'initSegment' ? { ...callbacks, onAbort: undefined } : callbacks)
    }
  }
}

export class HlsPlayer {
  /**
   * @param {HTMLVideoElement} video
   * @param {{ onChange?: () => void, loader?: (Hls: unknown, player: HlsPlayer) => Promise<object>, onHls?: (hls: unknown, Hls: unknown) => void }} options
   */
  constructor (video, options = {}) {
    this.video = video
    this.options = options
    this.reset()
  }

  /**
   * Load and run hls.js now (the page calls this when idle): at the first "play" its ~400 KB would
   * otherwise be evaluated on the path to the first frame (~40 ms in a bench trace).
   */
  preload () {
    hlsLib().catch(() => {})
  }

  /** hls.js is loaded and run (false until then, and after a failed import). */
  get libraryLoaded () {
    return HlsClass != null
  }

  /** No video loaded: no hls.js instance, renditions, pin, switches or storyboard. */
  reset () {
    this.hls = null
    this.levels = []
    this.level = -1
    this.pinned = -1
    this.switches = []
    this.cues = []
  }

  /** Play `pkg` (the package status: master, poster, storyboard URLs). */
  async load (pkg) {
    this.destroy()
    const video = this.video
    if (pkg.poster != null) video.poster = pkg.poster
    if (pkg.storyboard != null) storyboard(pkg.storyboard).then(c => { this.cues = c }, () => {})
    const Hls = await hlsLib().catch(() => null)
    if (Hls == null || !Hls.isSupported()) {
      if (video.canPlayType('application/vnd.apple.mpegurl') === '') throw new Error('this browser plays no HLS')
      video.src = pkg.master
      this.levels = [{ index: -1, name: 'browser (native HLS)' }]
      this.options.onChange?.()
      return
    }
    // A forward buffer of BUFFER_AHEAD_S: enough to ride out a slow segment, short enough that the
    // rendition follows the link (hls.js's 30 s would fetch a short video whole at the first rendition).
    const extra = this.options.loader != null ? await this.options.loader(Hls, this) : {}
    // The first segment from the lowest rendition: the first frame comes soonest, and the estimate
    // its download gives takes the next segments up the ladder at once.
    // startFragPrefetch: the first segment is requested as soon as its playlist is in, not at hls.js's next tick
    // after the MediaSource opens (a bench trace: 20–100 ms lost before the first segment's request, by tick phase).
    const fLoader = quietInitAborts(extra.fLoader ?? Hls.DefaultConfig.loader)
    const hls = new Hls({ ...extra, fLoader, startLevel: 0, startFragPrefetch: true, capLevelToPlayerSize: false, maxBufferLength: BUFFER_AHEAD_S, maxMaxBufferLength: BUFFER_AHEAD_S })
    this.hls = hls
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
      this.levels = data.levels.map((l, index) => ({ index, name: l.height ? `${l.height}p` : 'audio', height: l.height, bitrate: l.bitrate }))
      this.options.onChange?.()
    })
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
      this.level = data.level
      this.switches.push({ at: video.currentTime, level: this.levels[data.level]?.name ?? String(data.level) })
      this.options.onChange?.()
    })
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return
      console.warn('hls.js:', data.type, data.details, data.error?.message ?? '')
      // A network error mid-stream is retried from where it broke; anything else ends playback.
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad()
      else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError()
      else this.destroy()
    })
    this.options.onHls?.(hls, Hls)
    // The MediaSource opens while the playlists load.
    hls.attachMedia(video)
    hls.loadSource(pkg.master)
  }

  /** Pin rendition `index` (-1: automatic). */
  pin (index) {
    this.pinned = index
    const hls = this.hls
    if (hls != null) {
      // Before the first frame, from the next segment on (loadLevel): an immediate switch (currentLevel) would
      // also flush the buffer, with nothing on screen to keep. Playing: at once.
      if (this.video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) hls.loadLevel = index
      else hls.currentLevel = index
    }
    this.options.onChange?.()
  }

  /** The storyboard cue at `time` (seconds), if any. */
  thumbAt (time) {
    return this.cues.find(c => time >= c.start && time < c.end) ?? this.cues.at(-1)
  }

  get levelName () {
    return this.levels[this.level]?.name ?? (this.hls == null && this.levels.length > 0 ? this.levels[0].name : '…')
  }

  destroy () {
    this.hls?.destroy()
    this.reset()
    this.video.removeAttribute('poster')
  }
}

/** The scrub bar under the video: seek by dragging, and see the storyboard's frame under the pointer. */
export function scrubBar (bar, thumb, player) {
  const video = player.video
  const timeAt = (e) => {
    const r = bar.getBoundingClientRect()
    return Math.max(0, Math.min(1, (e.clientX - r.left) / r.width)) * (video.duration || 0)
  }
  bar.addEventListener('pointermove', (e) => {
    const cue = player.thumbAt(timeAt(e))
    if (cue == null) { thumb.hidden = true; return }
    thumb.hidden = false
    thumb.style.width = `${cue.w}px`
    thumb.style.height = `${cue.h}px`
    thumb.style.background = `url("${cue.url}") -${cue.x}px -${cue.y}px`
    const r = bar.getBoundingClientRect()
    thumb.style.left = `${Math.max(0, Math.min(r.width - cue.w, e.clientX - r.left - cue.w / 2))}px`
  })
  bar.addEventListener('pointerleave', () => { thumb.hidden = true })
  bar.addEventListener('click', (e) => { if (video.duration > 0) video.currentTime = timeAt(e) })
  video.addEventListener('timeupdate', () => {
    bar.querySelector('span').style.width = `${video.duration > 0 ? 100 * video.currentTime / video.duration : 0}%`
  })
}
