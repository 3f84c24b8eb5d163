/**
 * Entry of the browser bundle (dist/browser/dsm-p2p.js): start a P2P engine
 * in the tab, route the player's `/p2p/<id>` requests through the service
 * worker to it, and show the P2P panel.
 */
import { bridgeServiceWorker } from './bridge.ts'
import { P2PEngine } from './engine.ts'
import { renderPanel } from './panel.ts'
import { hlsFragmentLoader, segmentOf } from './hls-p2p.ts'
import { PeerRate, preferPeerLevels } from './hls-levels.ts'

export { hlsFragmentLoader, segmentOf, PeerRate, preferPeerLevels }

export interface P2PPlayer {
  engine: P2PEngine
  /** The URL the <video> element should play for a file. */
  urlFor(id: string): string
}

declare global {
  interface Window { dsmP2P?: P2PEngine }
}

async function controlled (): Promise<void> {
  await navigator.serviceWorker.register('/sw.js', { scope: '/' })
  await navigator.serviceWorker.ready
  if (navigator.serviceWorker.controller != null) return
  // clients.claim() in the worker makes this page controlled without a reload.
  await new Promise<void>(resolve => { navigator.serviceWorker.addEventListener('controllerchange', () => { resolve() }, { once: true }) })
}

export async function startP2P (options: { panel?: HTMLElement | null, cacheBytes?: number, onFallback?: (id: string, err: Error) => void } = {}): Promise<P2PPlayer> {
  if (!('serviceWorker' in navigator)) throw new Error('this browser has no service workers')
  const res = await fetch('/api/bootstrap')
  const { peers } = await res.json() as { peers: Array<{ peerId: string, addrs: string[] }> }
  const engine = await P2PEngine.start({ bootstrap: peers, ...(options.cacheBytes != null ? { cacheBytes: options.cacheBytes } : {}) })
  await controlled()
  bridgeServiceWorker(engine, options.onFallback ?? (() => {}))
  if (options.panel != null) renderPanel(options.panel, engine)
  window.dsmP2P = engine
  return { engine, urlFor: (id) => `/p2p/${id}` }
}
