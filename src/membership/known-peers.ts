/**
 * The members a node knew, kept across restarts (`<data>/peers.bin`): each
 * one's last sealed heartbeat, as it travels between nodes. At start they
 * are opened again (only records sealed with the cluster secret by their
 * members count) and put in the view as OFFLINE hearsay. So a restarted
 * member
 *   - dials its mates and the cluster again (connectivity redials OFFLINE
 *     members), even when its bootstrap list names nobody (the node that
 *     founded the cluster) or nobody reachable; and
 *   - counts its mates in its group's copy floor: with an empty view it saw
 *     a group of one and acknowledged writes with a single copy (the S3
 *     multipart test found a bucket record acknowledged that way by a
 *     restarted member that no one could reach).
 * Written every KNOWN_PEERS_SAVE_INTERVAL_MS while the view changes, and at
 * stop; a damaged file is reported and ignored (gossip refills the view).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { atomicWriteFile } from '../util/fs.ts'
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { bytesSchema } from '../wire/messages.ts'

export const KNOWN_PEERS_FILE_NAME = 'peers.bin'
/** The view is saved at most this often (and at stop). */
export const KNOWN_PEERS_SAVE_INTERVAL_MS = 30_000
/** Members kept, most recently heard first. */
export const MAX_KNOWN_PEERS = 2000
/** A sealed heartbeat is well under this (a member's addresses bound it). */
const MAX_SEALED_BYTES = 16 * 1024

const KnownPeersSchema = z.object({ v: z.literal(1), sealed: z.array(bytesSchema.refine(b => b.byteLength <= MAX_SEALED_BYTES)).max(MAX_KNOWN_PEERS) })

export interface KnownPeersStore {
  /** The sealed records saved last ([] when none were). Throws if the file cannot be read as one. */
  load(): Promise<Uint8Array[]>
  save(sealed: Uint8Array[]): Promise<void>
}

/** Known peers in a data directory. */
export function knownPeersFile (dataDir: string): KnownPeersStore {
  const path = join(dataDir, KNOWN_PEERS_FILE_NAME)
  return {
    async load () {
      const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return undefined; throw err })
      if (bytes == null) return []
      return decodeMessage(KnownPeersSchema, bytes, MAX_KNOWN_PEERS * (MAX_SEALED_BYTES + 8) + 64).sealed
    },
    async save (sealed) {
      await atomicWriteFile(path, encodeMessage(KnownPeersSchema, { v: 1, sealed: sealed.slice(0, MAX_KNOWN_PEERS) }), 0o600)
    }
  }
}
