/** The P2P panel of the player page: where the bytes came from, live. */
import type { P2PEngine, P2PStats } from './engine.ts'

const SECONDS = 40
const MiB = 1024 * 1024

function fmt (bytes: number): string {
  return bytes >= MiB ? `${(bytes / MiB).toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`
}

export function renderPanel (root: HTMLElement, engine: P2PEngine): void {
  root.hidden = false
  root.innerHTML = `
    <div class="card-head"><h2>Peer-to-peer</h2><span class="small muted" id="p2p-peer"></span></div>
    <div class="p2p-numbers">
      <div><span class="dot storage"></span><strong id="p2p-storage">0</strong><span class="muted small">from storage nodes</span></div>
      <div><span class="dot peers"></span><strong id="p2p-peers">0</strong><span class="muted small">from other browsers</span></div>
      <div><strong id="p2p-share">0%</strong><span class="muted small">browser share</span></div>
      <div><strong id="p2p-served">0</strong><span class="muted small">served to browsers</span></div>
      <div><strong id="p2p-conns">0 / 0</strong><span class="muted small">storage / browser links</span></div>
      <div><strong id="p2p-rejected">0</strong><span class="muted small">chunks rejected</span></div>
    </div>
    <svg id="p2p-chart" viewBox="0 0 ${SECONDS * 10} 60" preserveAspectRatio="none" role="img" aria-label="bytes per second by source"></svg>`
  const $ = (id: string): HTMLElement => root.querySelector(`#${id}`) as HTMLElement
  // A text is set only when it changes: each change costs the page a style and layout pass.
  const set = (id: string, text: string): void => { const e = $(id); if (e.textContent !== text) e.textContent = text }
  set('p2p-peer', `this tab: ${engine.libp2p.peerId.toString().slice(-10)}`)
  const history: Array<{ storage: number, peers: number }> = []
  let last: P2PStats = { ...engine.stats }
  const update = (s: P2PStats): void => {
    const total = s.fromStorage + s.fromPeers
    set('p2p-storage', fmt(s.fromStorage))
    set('p2p-peers', fmt(s.fromPeers))
    set('p2p-share', `${total === 0 ? 0 : Math.round((100 * s.fromPeers) / total)}%`)
    set('p2p-served', fmt(s.servedToPeers))
    set('p2p-conns', `${s.storageConnections} / ${s.peerConnections}`)
    set('p2p-rejected', String(s.rejected))
  }
  engine.addEventListener('stats', (e) => { update(e.detail) })
  update(engine.stats)
  /** The chart shows an idle history already. */
  let idleDrawn = false
  setInterval(() => {
    const s = engine.stats
    history.push({ storage: s.fromStorage - last.fromStorage, peers: s.fromPeers - last.fromPeers })
    last = { ...s }
    if (history.length > SECONDS) history.shift()
    // Drawn only when seen and when it changed (an idle chart is the same bars each second).
    const idle = history.every(h => h.storage + h.peers === 0)
    if (document.hidden || (idle && idleDrawn)) return
    const max = Math.max(1, ...history.map(h => h.storage + h.peers))
    $('p2p-chart').innerHTML = history.map((h, i) => {
      const x = (SECONDS - history.length + i) * 10
      const hs = (h.storage / max) * 58
      const hp = (h.peers / max) * 58
      return `<rect class="storage" x="${x}" y="${60 - hs}" width="8" height="${hs}"/><rect class="peers" x="${x}" y="${60 - hs - hp}" width="8" height="${hp}"/>`
    }).join('')
    idleDrawn = idle
  }, 1000)
}
