/**
 * The coordinator of an upload: a member of the target group reads the
 * bytes, cuts and hashes the chunks, writes each locally and streams it to
 * the other members at the same time (the slowest member paces the upload:
 * backpressure, never a whole file in memory), then commits and asks the
 * members to commit. The upload is acknowledged only when the write quorum
 * of durable copies exists.
 */
import mime from 'mime'
import { fileTypeFromBuffer } from 'file-type'
import { DEFAULT_CHUNK_SIZE_BYTES, MAX_UPLOAD_BYTES } from '../constants.ts'
import { InsufficientStorageError, NotAMemberError, QuorumError, toError } from '../errors.ts'
import { anySignal } from '../util/abort.ts'
import { monotonicNow } from '../util/time.ts'
import { chunkStream } from '../content/chunker.ts'
import { hashChunk } from '../content/chunk-hash.ts'
import { announceAbort, announceCommit, outOfSpace, prepareQuorum } from './commit.ts'
import { ingestSmall } from './ingest-small.ts'
import type { IngestComponents } from './ingest-components.ts'
import { createManifest } from '../content/manifest.ts'
import { validateFileName, validateMime } from '../content/names.ts'
import { ReplicaSession } from './replicate.ts'
import { copyFloor } from './placement.ts'
import { ChunkWriter } from '../store/chunk-writer.ts'
import type { SpaceReservation } from '../store/local-store.ts'
import type { UploadKey } from '../store/prepared.ts'
import type { PutHeader, UploadResult } from '../wire/messages.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** Type from the name, else sniffed from the first bytes, else octet-stream. */
export async function detectMime (name: string, head: Uint8Array | undefined): Promise<string> {
  const byName = mime.getType(name)
  if (byName != null) return byName
  if (head != null && head.byteLength > 0) {
    const sniffed = await fileTypeFromBuffer(head).catch(() => undefined)
    if (sniffed != null) return sniffed.mime
  }
  return 'application/octet-stream'
}

interface Plan { targets: string[], mustStore: Set<string>, copies: number, reservation?: SpaceReservation }

/** Who gets the file, and which copies the quorum needs. */
function plan (c: IngestComponents, header: PutHeader): Plan {
  const members = c.view.groupMembers(header.group).filter(m => !m.self && (m.state === 'ACTIVE' || m.state === 'SYNCING'))
  const active = members.filter(m => m.state === 'ACTIVE').map(m => m.peerId)
  // 'all': every member ACTIVE now must store it. N: any N durable copies (ours included).
  const mustStore = new Set(header.quorum === 'all' ? active : [])
  const floor = copyFloor(c.view, header.group, c.minCopies, header.quorum)
  const copies = Math.max(floor, header.quorum === 'all' ? active.length + 1 : header.quorum)
  if (copies > members.length + 1) {
    throw new QuorumError(`group ${header.group} has ${members.length + 1} member(s) able to store right now; ${copies} copies are needed` +
      (copies === floor ? ` (the copy floor, --min-copies ${floor}: the other members are OFFLINE as this node sees them)` : ''))
  }
  return { targets: members.map(m => m.peerId), mustStore, copies }
}

/**
 * With a declared size, leave out members that cannot fit it above their
 * reserve, and refuse up front (507) when that leaves the quorum unreachable.
 */
async function checkSpace (c: IngestComponents, header: PutHeader, p: Plan): Promise<Plan> {
  if (header.size == null) return p
  const reservation = await c.store.reserveSpace(header.size)
  const size = header.size
  const full = p.targets.filter(peer => {
    const m = c.view.get(peer)
    return m != null && m.total > 0 && m.free - size < m.reserve
  })
  const targets = p.targets.filter(peer => !full.includes(peer))
  if (full.some(peer => p.mustStore.has(peer)) || targets.length + 1 < p.copies) {
    reservation.release()
    const names = full.map(peer => peer.slice(-8)).join(', ')
    throw new InsufficientStorageError(`member(s) ${names} of ${header.group} cannot fit ${size} bytes above their reserve`)
  }
  return { ...p, targets, reservation }
}

export async function ingest (c: IngestComponents, header: PutHeader, source: AsyncIterable<Uint8Array | Uint8ArrayList>, options: AbortOptions = {}): Promise<UploadResult> {
  // The same rules whether the upload came over HTTP or from a peer over /dsm/put.
  validateFileName(header.name)
  if (header.mime != null) validateMime(header.mime)
  if (c.status.group !== header.group || c.status.state !== 'ACTIVE') {
    throw new NotAMemberError(`this node cannot coordinate writes to ${header.group} (group ${c.status.group ?? 'none'}, ${c.status.state})`)
  }
  const chunkSize = c.chunkSize ?? DEFAULT_CHUNK_SIZE_BYTES
  const { targets, mustStore, copies, reservation } = await checkSpace(c, header, plan(c, header))
  if (c.channels != null && header.size != null && header.size <= chunkSize) {
    const end = c.status.beginTransfer()
    try {
      return await ingestSmall({ ...c, channels: c.channels }, { header, chunkSize, targets, plan: { copies, mustStore, group: header.group }, detectMime, ...(reservation != null ? { reservation } : {}) }, source, options)
    } finally {
      reservation?.release()
      end()
    }
  }
  const controller = new AbortController()
  const signal = anySignal(options.signal, controller.signal)
  const endTransfer = c.status.beginTransfer()
  const opened = await Promise.allSettled(targets.map(async peer => ReplicaSession.open(c.dialer, peer, { group: header.group, chunkSize }, { signal })))
  const sessions = opened.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  const unreachable = targets.filter((_, i) => opened[i]?.status === 'rejected')
  const writer = new ChunkWriter(c.store, reservation)
  const digests = writer.digests
  let key: UploadKey | undefined
  let prepares: Array<Promise<void>> = []
  let local: Promise<void> | undefined
  let localPrepared = false
  let committed = false
  let endDeciding = (): void => {}
  try {
    if (unreachable.some(p => mustStore.has(p)) || sessions.length + 1 < copies) {
      const why = opened.flatMap((r, i) => r.status === 'rejected' ? [`${targets[i]?.slice(-8) ?? '?'}: ${toError(r.reason).message}`] : [])
      throw new QuorumError(`cannot reach members of ${header.group} (${why.join('; ')}); a quorum of ${copies} copies is out of reach`)
    }
    let head: Uint8Array | undefined
    let size = 0
    // One chunk in flight while the next is read and hashed: the body, the hashing and the transfers overlap.
    let inFlight: Promise<unknown> = Promise.resolve()
    for await (const chunk of chunkStream(source, chunkSize, { maxBytes: header.size ?? MAX_UPLOAD_BYTES })) {
      head ??= chunk.slice(0, 4100)
      const { digest, leaves } = await hashChunk(chunk)
      size += chunk.byteLength
      await inFlight
      assertQuorumPossible(sessions, mustStore, copies, header.group)
      // Disk and network at once: the writer queues the local write, the sessions stream the chunk.
      inFlight = Promise.all([writer.put(digest, chunk, { signal, leaves }), ...sessions.map(async s => s.sendChunk(chunk, { signal }))])
      inFlight.catch(() => {}) // awaited above or below; a failure while the next chunk is read is not unhandled
    }
    await inFlight
    assertQuorumPossible(sessions, mustStore, copies, header.group)
    if (header.size != null && size !== header.size) {
      throw new QuorumError(`the upload ended after ${size} of the ${header.size} bytes announced`)
    }
    const manifest = await createManifest({
      size, chunkSize, chunks: digests, name: header.name, mime: header.mime ?? await detectMime(header.name, head)
    })
    const id = manifest.id.toString()
    const createdAt = Date.now()
    const ts = c.store.clock.next(c.store.index.get(id)?.ts)
    key = { id, ts, origin: c.selfId }
    endDeciding = c.store.beginDeciding(key)
    const members = sessions.map(s => s.peer)
    const frame = { manifest: manifest.bytes, createdAt, ts, origin: c.selfId, copies, members }
    // Every copy prepares at once — ours and the members' — each with one forced write (./commit.ts).
    const upload = { ...key, group: header.group, manifest: manifest.bytes, createdAt, copies, members, at: monotonicNow() }
    local = writer.flush({ signal }).then(async staged => { await c.store.prepare(upload, staged, manifest); localPrepared = true })
    prepares = sessions.map(async s => s.prepare(frame, { signal }))
    const ready = await prepareQuorum(local, sessions, prepares, { copies, mustStore, group: header.group })
    // Committed: `copies` durable prepared records exist. Turning them into the file needs no forced write.
    await c.store.commitPrepared(key)
    committed = true
    announceCommit(sessions, prepares, ready)
    return { id, size, name: manifest.name, mime: manifest.mime, group: header.group, createdAt, replicas: [c.selfId, ...ready.map(s => s.peer)] }
  } catch (err) {
    await announceAbort(sessions, prepares, local)
    controller.abort(err)
    for (const s of sessions) s.abort(toError(err))
    if (key != null && localPrepared && !committed) await c.store.abortPrepared(key).catch(e => { c.logger.warn({ err: toError(e).message }, 'could not drop a prepared upload; the resolver will') })
    throw err
  } finally {
    endDeciding()
    await writer.flush().catch(() => {}) // let queued writes settle before collecting
    writer.release()
    reservation?.release()
    // Chunks of an upload that never committed are garbage now (unless another file uses them).
    if (!committed && digests.length > 0) {
      await c.store.collect(digests).catch(err => { c.logger.warn({ err: toError(err).message }, 'could not collect the chunks of a failed upload') })
    }
    endTransfer()
  }
}

function assertQuorumPossible (sessions: ReplicaSession[], mustStore: Set<string>, copies: number, group: string): void {
  const alive = sessions.filter(s => s.failure == null)
  const lostRequired = sessions.find(s => s.failure != null && mustStore.has(s.peer))
  if (lostRequired != null || alive.length + 1 < copies) {
    const failed = lostRequired ?? sessions.find(s => s.failure != null)
    throw outOfSpace(sessions) ?? new QuorumError(`lost member ${failed?.peer.slice(-8) ?? '?'} of ${group} during the upload (${failed?.failure?.message ?? 'unknown'}); not acknowledged`)
  }
}
