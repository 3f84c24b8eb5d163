/**
 * A private cluster, two ways (either or both):
 *  - a pre-shared network key (libp2p pnet, the swarm-key format IPFS uses):
 *    every connection is encrypted with it before anything else happens, so
 *    a peer without the key cannot even complete a handshake — it can neither
 *    gossip, nor query the DHT, nor call a dsm protocol;
 *  - an allowlist of peer ids: after the encrypted handshake proves who the
 *    remote is, anyone else is refused, in both directions.
 * Browser nodes cannot join a private cluster (pnet has no WebRTC/WebSockets
 * story in browsers, and their peer ids are throwaway); they still use the
 * HTTP gateway.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { peerIdFromString } from '@libp2p/peer-id'
import { InvalidConfigError } from '../errors.ts'
import type { ConnectionGater, PeerId } from '@libp2p/interface'

const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'
const SWARM_KEY_BYTES = 32

/** A new swarm key file's text (`dsm swarm-key > swarm.key`). */
export function generateSwarmKey (): string {
  return `${SWARM_KEY_HEADER}\n/base16/\n${randomBytes(SWARM_KEY_BYTES).toString('hex')}\n`
}

/** Read and check a swarm key file; the bytes pnet wants. */
export async function loadSwarmKey (path: string): Promise<Uint8Array> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new InvalidConfigError(`network key ${path}: ${(err as Error).message}`)
  }
  const [header, codec, key] = text.split(/\r?\n/)
  if (header !== SWARM_KEY_HEADER || codec !== '/base16/' || !/^[0-9a-fA-F]{64}$/.test(key ?? '')) {
    throw new InvalidConfigError(`network key ${path}: expected "${SWARM_KEY_HEADER}", "/base16/" and 64 hex digits on three lines (make one with: dsm swarm-key)`)
  }
  return new TextEncoder().encode(`${header}\n${codec}\n${(key ?? '').toLowerCase()}`)
}

/** Parse peer ids for an allowlist; a typo is a config error, not a silently closed door. */
export function parseAllowlist (ids: string[]): Set<string> {
  return new Set(ids.map(id => {
    try {
      return peerIdFromString(id).toString()
    } catch {
      throw new InvalidConfigError(`allowPeers: "${id.slice(0, 80)}" is not a peer id`)
    }
  }))
}

/** Refuse every connection whose remote (proved by the handshake) is not on the list; ourselves always pass. */
export function allowlistGater (allowed: Set<string>, self: PeerId): ConnectionGater {
  const refuse = (peer: PeerId): boolean => !peer.equals(self) && !allowed.has(peer.toString())
  return {
    denyDialPeer: async (peer) => refuse(peer),
    denyInboundEncryptedConnection: async (peer) => refuse(peer),
    denyOutboundEncryptedConnection: async (peer) => refuse(peer)
  }
}

/** One gater from several: a connection is refused when any of them refuses it. */
export function combineGaters (...gaters: Array<ConnectionGater | undefined>): ConnectionGater {
  const present = gaters.filter((g): g is ConnectionGater => g != null)
  const methods = new Set(present.flatMap(g => Object.keys(g) as Array<keyof ConnectionGater>))
  const combined: Record<string, (...args: unknown[]) => Promise<boolean>> = {}
  for (const m of methods) {
    combined[m] = async (...args: unknown[]) => {
      for (const g of present) {
        const fn = g[m] as ((...a: unknown[]) => boolean | Promise<boolean>) | undefined
        if (fn != null && await fn.apply(g, args)) return true
      }
      return false
    }
  }
  return combined as ConnectionGater
}
