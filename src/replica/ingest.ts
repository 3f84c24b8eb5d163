/**
 * The coordinator of an upload, one sequence for every size: a member of the
 * target group checks the request, plans the copies, receives the body —
 * storing it here and sending it to the members at the same time (how
 * depends on the size: ./transfer-channel.ts for one chunk,
 * ./transfer-stream.ts beyond) — builds the manifest, stamps the upload,
 * prepares every copy at once and commits once the write quorum of durable
 * copies exists (./commit.ts). Only then is the upload acknowledged.
 */
import { DEFAULT_CHUNK_SIZE_BYTES, MAX_UPLOAD_BYTES } from '../constants.ts'
import { InsufficientStorageError, NotAMemberError, QuorumError, toError } from '../errors.ts'
import { anySignal } from '../util/abort.ts'
import { monotonicNow } from '../util/time.ts'
import { announceAbort, announceCommit, outOfSpace, prepareQuorum } from './commit.ts'
import { createManifest } from '../content/manifest.ts'
import { detectMime } from '../content/mime.ts'
import { validateFileName, validateMime } from '../content/names.ts'
import { copyFloor } from './placement.ts'
import { ChannelTransfer } from './transfer-channel.ts'
import { StreamTransfer } from './transfer-stream.ts'
import { confirmCarried, stampCarried } from './carried-name.ts'
import { encodeMessage } from '../wire/codec.ts'
import { NameOpSchema } from '../wire/names.ts'
import type { CarriedName } from './carried-name.ts'
import type { ChannelCopy } from './transfer-channel.ts'
import type { CopyAttempt } from './commit.ts'
import type { PreparedName } from '../store/prepared.ts'
import type { NameOpWire } from '../wire/names.ts'
import type { IngestComponents, UploadTransfer } from './ingest-components.ts'
import type { SpaceReservation } from '../store/local-store.ts'
import type { UploadKey } from '../store/prepared.ts'
import type { PutHeader, UploadResult } from '../wire/messages.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

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

/** The same rules whether the upload came over HTTP or from a peer over /dsm/put. */
function checkRequest (c: IngestComponents, header: PutHeader): void {
  validateFileName(header.name)
  if (header.mime != null) validateMime(header.mime)
  if (c.status.group !== header.group || c.status.state !== 'ACTIVE') {
    throw new NotAMemberError(`this node cannot coordinate writes to ${header.group} (group ${c.status.group ?? 'none'}, ${c.status.state})`)
  }
}

export interface IngestOptions extends AbortOptions {
  /** An S3 key record to write with the file when it can ride in its commit (./carried-name.ts). */
  name?: CarriedName
}

export async function ingest (c: IngestComponents, header: PutHeader, source: AsyncIterable<Uint8Array | Uint8ArrayList>, options: IngestOptions = {}): Promise<UploadResult> {
  checkRequest(c, header)
  const chunkSize = c.chunkSize ?? DEFAULT_CHUNK_SIZE_BYTES
  const p = await checkSpace(c, header, plan(c, header))
  const quorum = { copies: p.copies, mustStore: p.mustStore, group: header.group }
  const controller = new AbortController()
  const signal = anySignal(options.signal, controller.signal)
  const endTransfer = c.status.beginTransfer()
  let transfer: UploadTransfer | undefined
  let key: UploadKey | undefined
  let prepares: Array<Promise<void>> = []
  let local: Promise<void> | undefined
  let localPrepared = false
  let committed = false
  let endDeciding = (): void => {}
  try {
    const route = { group: header.group, chunkSize }
    transfer = c.channels != null && header.size != null && header.size <= chunkSize
      ? new ChannelTransfer({ ...c, channels: c.channels }, p.targets, route, p.reservation)
      : await StreamTransfer.open(c, p.targets, route, signal, p.reservation)
    const { copies } = transfer
    if (transfer.unreachable.some(u => p.mustStore.has(u.peer)) || copies.length + 1 < p.copies) {
      throw new QuorumError(`cannot reach members of ${header.group} (${transfer.unreachable.map(u => `${u.peer.slice(-8)}: ${u.why}`).join('; ')}); a quorum of ${p.copies} copies is out of reach`)
    }
    const body = await transfer.receive(source, { signal, maxBytes: header.size ?? MAX_UPLOAD_BYTES, checkQuorum: () => { assertQuorumPossible(copies, quorum) } })
    if (header.size != null && body.size !== header.size) {
      throw new QuorumError(`the upload ended after ${body.size} of the ${header.size} bytes announced`)
    }
    // The body took a while: the node may have left its group meanwhile (a surplus move, a recruit).
    checkRequest(c, header)
    const manifest = await createManifest({ size: body.size, chunkSize, chunks: body.digests, name: header.name, mime: header.mime ?? await detectMime(header.name, body.head), ...(header.tag != null ? { tag: header.tag } : {}) })
    const id = manifest.id.toString()
    const createdAt = Date.now()
    // Newer than the file's row if there is one: the clock is past every stamp the index holds (LocalStore.start).
    const ts = c.store.clock.next()
    key = { id, ts, origin: c.selfId }
    endDeciding = c.store.beginDeciding(key)
    const members = copies.map(s => s.peer)
    // A key record rides in the prepares when every copy goes over the channel to the bucket's own group.
    const carried = options.name != null && transfer instanceof ChannelTransfer && options.name.group === header.group ? stampCarried(c, options.name, id) : undefined
    const frame = { manifest: manifest.bytes, createdAt, ts, origin: c.selfId, copies: p.copies, members, ...(carried != null ? { name: encodeMessage(NameOpSchema, toWireOp(carried)) } : {}) }
    // Every copy prepares at once — ours and the members' — each with one forced write (./commit.ts).
    const upload = { ...key, group: header.group, manifest: manifest.bytes, createdAt, copies: p.copies, members, at: monotonicNow(), ...(carried != null ? { name: carried } : {}) }
    const t = transfer
    local = t.prepareLocal(upload, manifest, { signal }).then(() => { localPrepared = true })
    prepares = copies.map(async copy => t.prepareCopy(copy, frame, { signal }))
    const ready = await prepareQuorum(local, copies, prepares, quorum)
    // Committed: `copies` durable prepared records exist. Turning them into the file needs no forced write.
    await c.store.commitPrepared(key)
    committed = true
    let named = false
    if (carried != null) {
      // Every copy hears the decision with its answer: what it holds of the record (./carried-name.ts).
      // Carried only on the channel (stampCarried above): every copy is a ChannelCopy.
      named = await confirmCarried(c, header.group, carried, copies as ChannelCopy[], prepares)
    } else {
      announceCommit(copies, prepares, ready)
    }
    return { id, size: body.size, name: manifest.name, mime: manifest.mime, group: header.group, createdAt, replicas: [c.selfId, ...ready.map(s => s.peer)], ...(named ? { named: true as const } : {}) }
  } catch (err) {
    await announceAbort(transfer?.copies ?? [], prepares, local)
    controller.abort(err)
    transfer?.abort(toError(err))
    if (key != null && localPrepared && !committed) await c.store.abortPrepared(key).catch(e => { c.logger.warn({ err: toError(e).message }, 'could not drop a prepared upload; the resolver will') })
    throw err
  } finally {
    endDeciding()
    await transfer?.finish(committed)
    p.reservation?.release()
    endTransfer()
  }
}

function toWireOp (n: PreparedName): NameOpWire {
  return { bucket: n.bucket, key: n.key, live: n.live, ts: n.ts, origin: n.origin, ...(n.value != null ? { value: n.value } : {}) }
}

function assertQuorumPossible (copies: CopyAttempt[], quorum: { copies: number, mustStore: Set<string>, group: string }): void {
  const alive = copies.filter(s => s.failure == null)
  const lostRequired = copies.find(s => s.failure != null && quorum.mustStore.has(s.peer))
  if (lostRequired != null || alive.length + 1 < quorum.copies) {
    const failed = lostRequired ?? copies.find(s => s.failure != null)
    throw outOfSpace(copies) ?? new QuorumError(`lost member ${failed?.peer.slice(-8) ?? '?'} of ${quorum.group} during the upload (${failed?.failure?.message ?? 'unknown'}); not acknowledged`)
  }
}
