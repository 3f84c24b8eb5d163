/**
 * The swarm registry a storage node keeps for browser nodes — a tracker in
 * WebTorrent's terms. A browser watching a file announces the chunks it holds
 * and how to reach it (its relay addresses); the answer lists the other
 * browsers watching the same file with their chunk bitmaps, freshest first.
 * Entries expire after SWARM_TTL_MS without an announce. Only the announcing
 * peer itself (authenticated by the connection) can add or remove its entry.
 */
import { rpcHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { PROTOCOLS, SwarmAnnounceSchema, SwarmPeersSchema } from '../wire/messages.ts'
import type { SwarmAnnounce, SwarmPeers } from '../wire/messages.ts'

/** A browser watching a file is forgotten by the swarm registry after this long without an announce. */
export const SWARM_TTL_MS = 30_000
/** Viewers a storage node tracks per file, and files it tracks. */
export const SWARM_MAX_PEERS_PER_FILE = 256
export const SWARM_MAX_FILES = 10_000
/** Peers a swarm answer lists (the freshest first). */
export const SWARM_ANSWER_PEERS = 16

interface Entry { addrs: string[], have: Uint8Array, at: number }

export class SwarmRegistry {
  private readonly files = new Map<string, Map<string, Entry>>()

  announce (from: string, a: SwarmAnnounce, now = Date.now()): SwarmPeers {
    this.expire(a.id, now)
    let viewers = this.files.get(a.id)
    if (a.leave === true) {
      viewers?.delete(from)
    } else {
      if (viewers == null && this.files.size < SWARM_MAX_FILES) {
        viewers = new Map()
        this.files.set(a.id, viewers)
      }
      if (viewers != null && (viewers.has(from) || viewers.size < SWARM_MAX_PEERS_PER_FILE)) {
        viewers.set(from, { addrs: a.addrs, have: a.have, at: now })
      }
    }
    if (viewers?.size === 0) this.files.delete(a.id)
    const peers = [...(viewers ?? new Map<string, Entry>()).entries()]
      .filter(([peer]) => peer !== from)
      .sort(([, x], [, y]) => y.at - x.at)
      .slice(0, SWARM_ANSWER_PEERS)
      .map(([peerId, e]) => ({ peerId, addrs: e.addrs, have: e.have }))
    return { peers }
  }

  /** Number of browsers watching `id` (for the API and tests). */
  viewers (id: string, now = Date.now()): number {
    this.expire(id, now)
    return this.files.get(id)?.size ?? 0
  }

  private expire (id: string, now: number): void {
    const viewers = this.files.get(id)
    if (viewers == null) return
    for (const [peer, e] of viewers) if (now - e.at > SWARM_TTL_MS) viewers.delete(peer)
    if (viewers.size === 0) this.files.delete(id)
  }
}

/** `/dsm/swarm`: a browser node announces the file it plays and the chunks it holds; it hears of others. */
export function swarmHandler (registry: SwarmRegistry): ProtocolHandler {
  return rpcHandler(PROTOCOLS.swarm, SwarmAnnounceSchema, SwarmPeersSchema, async (req, remote) => registry.announce(remote, req))
}
