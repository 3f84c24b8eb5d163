// The dsm web page: upload with progress, the file list, a player that
// streams from this node (HTTP Range: every node serves every file), and the
// cluster, refreshed every two seconds. Plain ES modules, no build step.

const $ = (sel) => document.querySelector(sel)
const REFRESH_MS = 2000
// While a video starts (until its first frame, at most this long) the page does not refresh: four API
// requests would queue beside the playlists and first segments (a browser opens six connections per
// node) and their redraws would take the main thread the player needs.
const START_QUIET_MS = 5000

import { HlsPlayer, scrubBar } from '/ui/hls-player.js'

const state = { files: [], filter: '', current: null, p2p: null, packages: new Map() }
// What the file list and the cluster last drew (redrawn only when it changes), and until when a starting
// video keeps the page from refreshing (performance.now() ms).
let shownFiles = ''
let shownGroups = ''
let quietUntil = 0

// P2P mode (?p2p=1): the page runs a libp2p node and the player reads through it.
const P2P_WANTED = new URLSearchParams(location.search).get('p2p') === '1'
const p2pModule = P2P_WANTED ? import('/ui/dsm-p2p.js') : null
p2pModule?.catch(() => {})

async function p2pLoader (Hls, p) {
  const mod = await p2pModule.catch(() => null)
  if (mod == null) return {}
  peerRate = new mod.PeerRate()
  return {
    fLoader: mod.hlsFragmentLoader(Hls.DefaultConfig.loader, {
      engine: () => state.p2p?.engine,
      media: p.video,
      upcoming: (level, sn) => (p.hls?.levels[level]?.details?.fragments ?? []).filter(f => typeof f.sn === 'number' && f.sn > sn).map(f => f.url),
      share: hlsShare,
      rate: peerRate,
      trace: (t) => hlsTrace.push(t)
    })
  }
}

// The link to other tabs, measured by the loader; the rendition choice reads it.
let peerRate = null
async function p2pLevels (hls, Hls, p) {
  const mod = await p2pModule.catch(() => null)
  if (mod == null) return
  mod.preferPeerLevels(hls, Hls, { engine: () => state.p2p?.engine, media: p.video, rate: peerRate, trace: (t) => hlsTrace.push(t) })
}

// Segment bytes per rendition by source, in P2P mode (shown beside the rendition).
const hlsShare = {}
window.dsmHlsShare = hlsShare
// Where each segment came from and why (read by `npm run bench -- hls --trace`).
const hlsTrace = []
window.dsmHlsTrace = hlsTrace
const player = new HlsPlayer(document.querySelector('#video'), {
  onChange: () => renderRendition(),
  // P2P mode: segments through the tab's engine once it is up (HTTP until then).
  loader: P2P_WANTED ? p2pLoader : undefined,
  // ... the swarms of a rendition's first segments looked up as soon as its playlist is in, and a
  // rendition other tabs hold preferred while the buffer is healthy.
  onHls: P2P_WANTED
    ? (hls, Hls) => {
        hls.on(Hls.Events.LEVEL_LOADED, (_e, data) => { void prepareFirst(data.details.fragments) })
        void p2pLevels(hls, Hls, player)
      }
    : undefined
})

async function prepareFirst (fragments) {
  // After the first frame: looking swarms up (requests to the node, hashing manifests) must not delay it.
  const video = $('#video')
  if (video.paused || video.readyState < 3) await new Promise(resolve => video.addEventListener('playing', resolve, { once: true }))
  const mod = await p2pModule.catch(() => null)
  const engine = state.p2p?.engine
  if (mod == null || engine == null) return
  const urls = [fragments[0]?.initSegment?.url, ...fragments.slice(0, 3).map(f => f.url)].filter(u => u != null)
  for (const url of urls) {
    const seg = mod.segmentOf(url)
    if (seg != null) engine.prepare(seg.id).catch(() => {})
  }
}
// For tests and the curious: the player's state (rendition, switches).
window.dsmPlayer = player
if (typeof requestIdleCallback === 'function') requestIdleCallback(() => { player.preload() }, { timeout: 2_000 })
else setTimeout(() => { player.preload() }, 0)

async function startP2P () {
  const toggle = $('#p2p-toggle')
  toggle.textContent = 'P2P mode: starting…'
  try {
    const mod = await p2pModule
    const cache = Number(new URLSearchParams(location.search).get('cache'))
    state.p2p = await mod.startP2P({
      panel: $('#p2p-panel'),
      ...(cache > 0 ? { cacheBytes: cache } : {}),
      onFallback: (id, err) => { toast(`P2P could not serve this file (${err.message}); playing over HTTP`) }
    })
    toggle.textContent = 'P2P mode: on'
    toggle.classList.add('on')
    toggle.href = '/'
  } catch (err) {
    toggle.textContent = 'P2P mode: unavailable'
    toggle.title = err.message
    toast(`P2P unavailable (${err.message}): playing over HTTP`)
  }
}

function mediaUrl (id) {
  return state.p2p != null ? state.p2p.urlFor(id) : `/files/${id}`
}

function formatBytes (n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`
}

function ago (ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000))
  // Not to the second: a label that changes on every refresh would redraw the whole list each time.
  if (s < 60) return 'just now'
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86400) return `${Math.round(s / 3600)} h ago`
  return new Date(ms).toLocaleDateString()
}

function el (tag, props = {}, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v)
    else if (k === 'title' || k === 'href' || k === 'download' || k === 'style' || k.startsWith('data-')) node.setAttribute(k, v)
    else node[k] = v
  }
  for (const c of children) node.append(c)
  return node
}

function toast (text) {
  const t = el('div', { class: 'toast' }, text)
  document.body.append(t)
  setTimeout(() => t.remove(), 3500)
}

// ---- the cluster token (writes need it unless the node runs --open) ---------
// Given once as /#token=…, or typed when a write is refused; kept in this browser only.
const TOKEN_KEY = 'dsm-token'
if (location.hash.startsWith('#token=')) {
  localStorage.setItem(TOKEN_KEY, decodeURIComponent(location.hash.slice('#token='.length)))
  history.replaceState(null, '', location.pathname + location.search)
}
function authHeaders () {
  const token = localStorage.getItem(TOKEN_KEY)
  return token ? { authorization: `Bearer ${token}` } : {}
}
/** After a 401: ask for the token; true when one was given (retry). */
function askToken (message) {
  const token = prompt(`${message}\n\nCluster token (dsm prints where it is kept):`)
  if (!token) return false
  localStorage.setItem(TOKEN_KEY, token.trim())
  return true
}

async function api (path, init = {}, retried = false) {
  const res = await fetch(path, { ...init, headers: { ...authHeaders(), ...init.headers } })
  if (res.status === 401 && !retried && init.method != null && askToken('This node needs the cluster token for this.')) return api(path, init, true)
  const body = res.headers.get('content-type')?.includes('json') ? await res.json() : null
  if (!res.ok) throw new Error(body?.message ?? `${res.status} ${res.statusText}`)
  return body
}

// ---- node -----------------------------------------------------------------

async function refreshNode () {
  try {
    const id = await api('/api/id')
    const badge = $('#node-state')
    badge.textContent = id.state
    badge.className = `badge ${id.state}`
    $('#node-id').textContent = `${id.peerId.slice(0, 8)}…${id.peerId.slice(-6)} · ${id.group ?? 'no group'}`
  } catch {
    $('#node-state').textContent = 'unreachable'
    $('#node-state').className = 'badge OFFLINE'
  }
}

// ---- cluster --------------------------------------------------------------

function seen (m) {
  return m.lastSeenMsAgo < 1000 ? 'now' : `${Math.round(m.lastSeenMsAgo / 1000)}s`
}

async function refreshCluster () {
  let groups
  try { groups = await api('/api/groups') } catch { return }
  $('#cluster-updated').textContent = `updated ${new Date().toLocaleTimeString()}`
  // Redrawn only when what it shows changed (see refreshFiles).
  const shown = JSON.stringify(groups.map(g => ({ ...g, members: g.members.map(m => ({ ...m, lastSeenMsAgo: seen(m) })) })))
  if (shown === shownGroups) return
  shownGroups = shown
  const select = $('#group-select')
  const chosen = select.value
  select.replaceChildren(el('option', { value: '' }, 'automatic (most free space)'),
    ...groups.map(g => el('option', { value: g.name }, `${g.name} — ${g.health.active}/${g.health.target} active`)))
  select.value = groups.some(g => g.name === chosen) ? chosen : ''
  $('#groups').replaceChildren(...groups.map(g => el('div', { class: 'group' },
    el('div', { class: 'group-head' },
      el('strong', {}, g.name),
      el('span', { class: `badge ${g.health.state}`, title: `${g.health.active} ACTIVE of ${g.health.target}` }, `${g.health.state} ${g.health.active}/${g.health.target}`)),
    ...g.members.map(m => {
      const used = m.total > 0 ? 1 - m.free / m.total : 0
      const sync = m.state === 'SYNCING' ? ` · ${m.sync.filesToGo} files / ${formatBytes(m.sync.bytesToGo)} to go` : ''
      return el('div', { class: 'member' },
        el('span', { class: 'mono', title: m.peerId }, `${m.peerId.slice(0, 8)}…${m.peerId.slice(-6)}`),
        el('span', { class: `badge ${m.state}` }, m.state),
        el('span', { class: 'small muted' }, `${formatBytes(m.free)} free of ${formatBytes(m.total)} · load ${m.load}${sync}`),
        el('span', { class: 'small muted' }, seen(m)),
        el('div', { class: 'bar', title: `${Math.round(used * 100)}% used` }, el('span', { style: `width: ${Math.round(used * 100)}%` })))
    }))))
  if (groups.length === 0) $('#groups').replaceChildren(el('p', { class: 'muted' }, 'No groups yet: nodes are still joining.'))
}

// ---- files ----------------------------------------------------------------

async function refreshFiles () {
  try {
    const [files, jobs] = await Promise.all([api('/api/files'), api('/api/jobs').catch(() => null)])
    state.files = files
    if (jobs != null) state.packages = new Map(jobs.packages.map(p => [p.source, p]))
  } catch { return }
  // Redrawn only when what it shows changed: a redraw every refresh costs frames while a video starts.
  const shown = JSON.stringify([state.files, [...state.packages], state.files.map(f => ago(f.createdAt))])
  if (shown === shownFiles) return
  shownFiles = shown
  renderFiles()
}

/** The HLS cell of a file: its package's state, or a button to make one of a video. */
function hlsCell (f) {
  const p = state.packages.get(f.id)
  if (p == null) {
    return /^video\//.test(f.mime) ? el('button', { onclick: () => makeHls(f), title: 'Transcode into an adaptive HLS ladder' }, 'Make HLS') : el('span', { class: 'muted' }, '—')
  }
  const text = p.state === 'transcoding' || p.state === 'queued' ? `${p.state} ${Math.floor(p.percent)} %` : p.state
  return el('span', { class: `badge ${p.state}`, title: p.error ?? p.tasks.map(t => `${t.task}: ${t.state} ${Math.floor(t.percent)} %${t.speed ? ` at ${t.speed.toFixed(1)}×` : ''}`).join('\n') }, text)
}

async function makeHls (file) {
  try {
    const p = await api(`/api/files/${file.id}/hls`, { method: 'POST' })
    state.packages.set(file.id, p)
    renderFiles()
  } catch (err) { toast(`Could not start HLS: ${err.message}`) }
}

function renderFiles () {
  const rows = state.files.filter(f => f.name.toLowerCase().includes(state.filter))
  if (rows.length === 0) {
    $('#files-body').replaceChildren(el('tr', {}, el('td', { colSpan: 7, class: 'muted' }, state.files.length === 0 ? 'No files yet — upload one above.' : 'No file matches.')))
    return
  }
  $('#files-body').replaceChildren(...rows.map(f => el('tr', { class: state.current === f.id ? 'current' : '', 'data-id': f.id },
    el('td', { class: 'name', title: f.id }, f.name),
    el('td', { class: 'num' }, formatBytes(f.size)),
    el('td', {}, f.group),
    el('td', { class: 'num' }, String(f.copies)),
    el('td', { class: 'hls' }, hlsCell(f)),
    el('td', { class: 'muted' }, ago(f.createdAt)),
    el('td', {}, el('div', { class: 'actions' },
      el('button', { class: 'play', onclick: () => play(f) }, 'Play'),
      el('a', { class: 'btn', href: `/files/${f.id}?download=1`, download: f.name }, 'Download'),
      el('button', { onclick: () => copyLink(f) }, 'Link'),
      el('button', { class: 'danger', onclick: () => remove(f) }, 'Delete'))))))
}

function renderRendition () {
  const hls = player.levels.length > 0
  $('#hls-controls').hidden = !hls
  $('#scrub').hidden = !hls
  if (!hls) return
  $('#rendition').textContent = player.levelName
  const shares = Object.entries(hlsShare).map(([r, b]) => `${r} ${Math.round(100 * b.peers / Math.max(1, b.peers + b.storage))} %`)
  $('#hls-share').textContent = P2P_WANTED && shares.length > 0 ? `from other tabs: ${shares.join(' · ')}` : ''
  const select = $('#rendition-select')
  const options = [el('option', { value: '-1' }, 'Auto'), ...player.levels.filter(l => l.index >= 0).map(l => el('option', { value: String(l.index) }, l.name))]
  if (select.options.length !== options.length) select.replaceChildren(...options)
  select.value = String(player.pinned)
}

async function play (file) {
  state.current = file.id
  const video = $('#video')
  quietUntil = performance.now() + START_QUIET_MS
  const pkg = state.packages.get(file.id)
  $('#screen').classList.add('playing')
  $('#now-playing').replaceChildren(el('strong', {}, file.name), el('span', { class: 'muted' }, ` · ${file.mime} · ${formatBytes(file.size)} · group ${file.group}${pkg?.playable ? ' · HLS' : ''}`))
  renderFiles()
  if (pkg?.playable) {
    try {
      await player.load(pkg)
      renderRendition()
      video.play().catch(() => {})
      return
    } catch (err) { toast(`HLS unavailable (${err.message}): playing the file as it was uploaded`) }
  }
  player.destroy()
  renderRendition()
  video.src = mediaUrl(file.id)
  video.play().catch(() => {})
}

async function copyLink (file) {
  const link = `${location.origin}/files/${file.id}`
  try { await navigator.clipboard.writeText(link); toast('Link copied') } catch { toast(link) }
}

async function remove (file) {
  if (!confirm(`Delete ${file.name} from every replica?`)) return
  try {
    await api(`/files/${file.id}`, { method: 'DELETE' })
    toast(`Deleted ${file.name}`)
    if (state.current === file.id) { player.destroy(); renderRendition(); $('#video').removeAttribute('src'); $('#screen').classList.remove('playing'); state.current = null }
    await refreshFiles()
  } catch (err) { toast(`Delete failed: ${err.message}`) }
}

// ---- upload ---------------------------------------------------------------

function upload (file, retried = false) {
  const item = $('#upload-item').content.firstElementChild.cloneNode(true)
  item.querySelector('.up-name').textContent = file.name
  const bar = item.querySelector('progress')
  const status = item.querySelector('.up-status')
  $('#uploads').prepend(item)
  const query = new URLSearchParams({ name: file.name })
  if ($('#group-select').value !== '') query.set('group', $('#group-select').value)
  if ($('#hls-check').checked && /^video\//.test(file.type)) query.set('hls', '1')
  // XMLHttpRequest, because fetch() reports no upload progress.
  const xhr = new XMLHttpRequest()
  xhr.open('POST', `/files?${query}`)
  if (file.type !== '') xhr.setRequestHeader('content-type', file.type)
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v)
  const started = Date.now()
  xhr.upload.onprogress = (e) => {
    if (!e.lengthComputable) return
    bar.value = e.loaded / e.total
    const rate = e.loaded / Math.max(0.001, (Date.now() - started) / 1000)
    status.textContent = `${formatBytes(e.loaded)} of ${formatBytes(e.total)} · ${formatBytes(rate)}/s${e.loaded === e.total ? ' · replicating…' : ''}`
  }
  xhr.onload = async () => {
    let body = {}
    try { body = JSON.parse(xhr.responseText) } catch {}
    if (xhr.status === 201) {
      bar.value = 1
      status.textContent = `stored on ${body.replicas.length} replicas of ${body.group} · ${body.id.slice(0, 14)}…${body.hls != null ? ' · HLS ladder queued' : ''}${body.hlsError != null ? ` · HLS not started: ${body.hlsError}` : ''}`
      if (body.hls != null) state.packages.set(body.id, body.hls)
      item.dataset.id = body.id
      await refreshFiles()
      if (state.current == null && /^(video|audio)\//.test(body.mime)) play({ ...body })
    } else if (xhr.status === 401 && !retried && askToken('Uploads to this node need the cluster token.')) {
      item.remove()
      upload(file, true)
    } else {
      status.textContent = `failed: ${body.message ?? xhr.statusText}`
      status.classList.add('error')
    }
  }
  xhr.onerror = () => { status.textContent = 'failed: the node could not be reached' }
  xhr.send(file)
}

function setupUpload () {
  const drop = $('#drop')
  const input = $('#file-input')
  input.addEventListener('change', () => { for (const f of input.files) upload(f); input.value = '' })
  for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add('over') })
  for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'))
  drop.addEventListener('drop', (e) => { e.preventDefault(); for (const f of e.dataTransfer.files) upload(f) })
}

// ---- start ----------------------------------------------------------------

$('#filter').addEventListener('input', (e) => { state.filter = e.target.value.toLowerCase(); renderFiles() })
$('#rendition-select').addEventListener('change', (e) => { player.pin(Number(e.target.value)) })
scrubBar($('#scrub'), $('#thumb'), player)
$('#video').addEventListener('error', () => {
  const video = $('#video')
  // P2P failed mid-play: continue from the same point over the HTTP gateway.
  if (player.hls != null) return
  if (state.p2p != null && state.current != null && video.src.includes('/p2p/')) {
    const at = video.currentTime
    video.src = `/files/${state.current}`
    video.currentTime = at
    video.play().catch(() => {})
    toast('P2P failed: continuing over HTTP')
    return
  }
  toast('This file cannot be played here; use Download.')
})
// Not awaited: the page (and HLS playback, over HTTP until the engine is up) starts at once.
if (P2P_WANTED) void startP2P()
setupUpload()
for (const ev of ['playing', 'error']) $('#video').addEventListener(ev, () => { quietUntil = 0 })
async function tick () {
  if (performance.now() < quietUntil) return
  await Promise.all([refreshNode(), refreshCluster(), refreshFiles()])
  renderRendition()
}
await tick()
setInterval(tick, REFRESH_MS)
