/**
 * The S3 namespace as any node sees it (the gateway side of ./names.ts):
 * which group owns a bucket, and the reads, listings and writes of buckets
 * and keys, sent to that group's members.
 *
 * A bucket's owning group is chosen when it is created: the group, among
 * those that can keep the copy floor, with the highest rendezvous hash of
 * (bucket, group), so nodes creating one bucket at once choose the same
 * group; that group's members then decide by stamp, and provide the
 * bucket's key in the DHT. A node finds an existing bucket's group (then
 * remembers it for a while) by reading the bucket's record from the read
 * quorum of the group it would have chosen; if that group does not have it
 * (the bucket was made while it was down, or groups came since), from the
 * groups the DHT names as its holders; then from every other group. A bucket
 * is "no such bucket" only if every group's read quorum said so; a group that
 * could not answer makes it "unavailable, retry". Keys per bucket are bounded
 * by one group's database; a listing page costs one request per member of
 * the read quorum.
 */
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { BucketExistsError, DsmError, NoSuchBucketError, QuorumError, UnavailableError, toError } from '../errors.ts'
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { BucketRecordSchema, MAX_NAME_ROWS, MAX_NAME_VALUE_BYTES, ObjectRecordSchema } from '../wire/names.ts'
import { BUCKET_RECORD_KEY } from '../store/name-index.ts'
import { answersAlone, askGroup, askMember, mergePages, newest } from './names.ts'
import { copyFloor } from './placement.ts'
import type { NameMemberComponents } from './names.ts'
import type { BucketRecord, NameRowWire, NamesRequest, NamesResponse, ObjectRecord } from '../wire/names.ts'
import type { AbortOptions } from '@libp2p/interface'

/**
 * Names the S3 layer keeps for itself in a bucket's table (multipart
 * uploads and their parts) start with a NUL, which no object key may hold:
 * they sort before every object and are never listed as objects.
 */
export const INTERNAL_KEY_PREFIX = '\u0000'
const PAST_INTERNAL_KEYS = '\u0000\u{10FFFF}'

/** How long an object operation's check that its bucket exists is remembered. */
export const BUCKET_CHECK_CACHE_MS = 5_000

/** How long a bucket's owning group is remembered. */
export const BUCKET_OWNER_CACHE_MS = 30_000

export interface ListedKey { key: string, record: ObjectRecord }
export interface ListedBucket { name: string, group: string, record: BucketRecord }

function rendezvous (bucket: string, group: string): Buffer {
  return createHash('sha256').update(`${bucket}\0${group}`).digest()
}

export interface NamespaceComponents extends NameMemberComponents {
  /** The groups whose members provide a bucket's key in the DHT (dht/group-finder.ts), their members now in view. */
  findBucket?: (bucket: string, options: AbortOptions) => Promise<string[]>
}

export class Namespace {
  private readonly c: NamespaceComponents
  private readonly owners = new LRUCache<string, string>({ max: 10_000, ttl: BUCKET_OWNER_CACHE_MS })
  private readonly checked = new LRUCache<string, ListedBucket>({ max: 10_000, ttl: BUCKET_CHECK_CACHE_MS })
  private readonly decoded = new WeakMap<Uint8Array, ObjectRecord>()

  constructor (components: NamespaceComponents) {
    this.c = components
  }

  /** Groups with an ACTIVE member, by name. */
  private liveGroups (): string[] {
    return this.c.view.groups().filter(g => g.members.some(m => m.state === 'ACTIVE')).map(g => g.name)
  }

  /**
   * The group that owns `bucket`: NoSuchBucketError only once the read quorum
   * of every group said it has no such bucket; UnavailableError if it was not
   * found and some group could not answer.
   */
  async ownerOf (bucket: string, options: AbortOptions = {}): Promise<string> {
    const cached = this.owners.get(bucket)
    if (cached != null) return cached
    // Our own group first: its table is on our disk.
    const own = this.c.status.group
    if (own != null && this.c.store.names.get(bucket, BUCKET_RECORD_KEY)?.live === true) return this.remember(bucket, own)
    const asked = new Set<string>()
    // Groups that could not answer, and why (the reason goes into the error: an operator needs it).
    const unsure = new Map<string, string>()
    const holds = async (g: string): Promise<boolean> => {
      asked.add(g)
      unsure.delete(g)
      try {
        return newest((await askGroup(this.c, g, { op: 'get', bucket, key: BUCKET_RECORD_KEY }, options)).map(r => r.res.row))?.live === true
      } catch (err) {
        if (!(err instanceof UnavailableError) || options.signal?.aborted === true) throw err
        unsure.set(g, err.message)
        return false
      }
    }
    const byPreference = this.c.view.groups().map(g => g.name).sort((a, b) => Buffer.compare(rendezvous(bucket, b), rendezvous(bucket, a)))
    // The group creation would have chosen; then those the DHT names; then all the others at once.
    const first = byPreference[0]
    if (first != null && await holds(first)) return this.remember(bucket, first)
    // A group asked already is asked again if it could not answer: the lookup may just have shown us its members.
    for (const g of await this.c.findBucket?.(bucket, options) ?? []) {
      if ((!asked.has(g) || unsure.has(g)) && await holds(g)) return this.remember(bucket, g)
    }
    const rest = this.c.view.groups().map(g => g.name).filter(g => !asked.has(g))
    const found = (await Promise.all(rest.map(async g => await holds(g) ? g : undefined))).find(g => g != null)
    if (found != null) return this.remember(bucket, found)
    if (unsure.size > 0) throw new UnavailableError(`bucket ${bucket} was not found, but group(s) ${[...unsure.keys()].join(', ')} could not be asked (${[...unsure.values()].join('; ')}); retry`)
    throw new NoSuchBucketError(`bucket ${bucket} does not exist`)
  }

  private remember (bucket: string, group: string): string {
    this.owners.set(bucket, group)
    return group
  }

  async createBucket (bucket: string, record: BucketRecord, options: AbortOptions = {}): Promise<string> {
    const existing = await this.ownerOf(bucket, options).catch((err: unknown) => { if (err instanceof NoSuchBucketError) return undefined; throw err })
    if (existing != null) throw new BucketExistsError(`bucket ${bucket} exists already`)
    const candidates = this.liveGroups().filter(g => this.c.view.groupMembers(g).filter(m => m.state === 'ACTIVE').length >= copyFloor(this.c.view, g, this.c.minCopies, 'all'))
    const group = candidates.sort((a, b) => Buffer.compare(rendezvous(bucket, b), rendezvous(bucket, a)))[0]
    if (group == null) throw new QuorumError('no group can keep a new bucket right now (none has enough ACTIVE members for --min-copies)')
    await this.write(group, { op: 'write', bucket, key: BUCKET_RECORD_KEY, live: true, value: encodeMessage(BucketRecordSchema, record), ifAbsent: true }, options)
    return this.remember(bucket, group)
  }

  async deleteBucket (bucket: string, options: AbortOptions = {}): Promise<void> {
    const group = await this.ownerOf(bucket, options)
    await this.write(group, { op: 'write', bucket, key: BUCKET_RECORD_KEY, live: false, ifEmpty: true }, options)
    this.owners.delete(bucket)
    this.checked.delete(bucket)
  }

  /**
   * The bucket, as a check before an object operation: remembered for
   * BUCKET_CHECK_CACHE_MS (the owning group's members refuse a write to a
   * bucket deleted meanwhile; only the body of such a write is wasted).
   */
  async bucketChecked (bucket: string, options: AbortOptions = {}): Promise<ListedBucket> {
    const cached = this.checked.get(bucket)
    if (cached != null) return cached
    const found = await this.bucket(bucket, options)
    this.checked.set(bucket, found)
    return found
  }

  async bucket (bucket: string, options: AbortOptions = {}): Promise<ListedBucket> {
    this.checked.delete(bucket)
    const group = await this.ownerOf(bucket, options)
    const row = newest((await askGroup(this.c, group, { op: 'get', bucket, key: BUCKET_RECORD_KEY }, options)).map(r => r.res.row))
    if (row?.live !== true || row.value == null) {
      this.owners.delete(bucket)
      throw new NoSuchBucketError(`bucket ${bucket} does not exist`)
    }
    return { name: bucket, group, record: decodeMessage(BucketRecordSchema, row.value, MAX_NAME_VALUE_BYTES) }
  }

  /** Every bucket of the cluster: each group's records, merged. */
  async buckets (options: AbortOptions = {}): Promise<ListedBucket[]> {
    const perGroup = await Promise.all(this.liveGroups().map(async g => {
      const replies = await askGroup(this.c, g, { op: 'buckets' }, options)
      // Every row is a bucket's own record (key ''): the newest per bucket wins, deleted ones drop out.
      const byBucket = new Map<string, NameRowWire[]>()
      for (const row of replies.flatMap(r => r.res.rows ?? [])) byBucket.set(row.bucket, [...(byBucket.get(row.bucket) ?? []), row])
      return [...byBucket.values()].map(rows => newest(rows)).filter((row): row is NameRowWire => row?.live === true).map(row => ({ group: g, row }))
    }))
    return perGroup.flat()
      .filter(b => b.row.value != null)
      .map(b => ({ name: b.row.bucket, group: b.group, record: decodeMessage(BucketRecordSchema, b.row.value as Uint8Array, MAX_NAME_VALUE_BYTES) }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  /** The object's record (shared with other readers of the same value: never change it). */
  async getObject (bucket: string, key: string, options: AbortOptions = {}): Promise<ObjectRecord | undefined> {
    const value = await this.get(bucket, key, options)
    if (value == null) return undefined
    // Our own table hands out the same bytes for a row until it changes: decoded once, not per read.
    let record = this.decoded.get(value)
    if (record == null) this.decoded.set(value, record = decodeMessage(ObjectRecordSchema, value, MAX_NAME_VALUE_BYTES))
    return record
  }

  async putObject (bucket: string, key: string, record: ObjectRecord, options: AbortOptions = {}): Promise<void> {
    await this.put(bucket, key, encodeMessage(ObjectRecordSchema, record), options)
  }

  async deleteObject (bucket: string, key: string, options: AbortOptions = {}): Promise<void> {
    await this.remove(bucket, key, options)
  }

  /** The live value of a name of `bucket` (an object's record, or a row of the S3 layer's own under INTERNAL_KEY_PREFIX). */
  async get (bucket: string, key: string, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    return this.getIn(await this.ownerOf(bucket, options), bucket, key, options)
  }

  async put (bucket: string, key: string, value: Uint8Array, options: AbortOptions = {}): Promise<void> {
    await this.putIn(await this.ownerOf(bucket, options), bucket, key, value, options)
  }

  async remove (bucket: string, key: string, options: AbortOptions = {}): Promise<void> {
    await this.removeIn(await this.ownerOf(bucket, options), bucket, key, options)
  }

  /** Up to `limit` live objects after `after`, in raw byte order (the S3 layer's own rows are never listed here). */
  async list (bucket: string, after: string, limit: number, options: AbortOptions = {}): Promise<{ keys: ListedKey[], next?: string }> {
    const from = Buffer.compare(Buffer.from(after), Buffer.from(PAST_INTERNAL_KEYS)) < 0 ? PAST_INTERNAL_KEYS : after
    const page = await this.listRaw(bucket, from, limit, options)
    return { keys: page.rows.map(r => ({ key: r.key, record: decodeMessage(ObjectRecordSchema, r.value, MAX_NAME_VALUE_BYTES) })), ...(page.next != null ? { next: page.next } : {}) }
  }

  /** Up to `limit` live names after `after` that start with `prefix` (all of them when prefix is ''), with their values. */
  async listRaw (bucket: string, after: string, limit: number, options: AbortOptions & { prefix?: string } = {}): Promise<{ rows: Array<{ key: string, value: Uint8Array }>, next?: string }> {
    return this.listIn(await this.ownerOf(bucket, options), bucket, after, limit, options)
  }

  /** The live value of a name in `group`'s table of `bucket` (a group's own table: the caller knows the group). */
  async getIn (group: string, bucket: string, key: string, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    if (answersAlone(this.c, group)) {
      const own = this.c.store.names.get(bucket, key)
      return own?.live === true ? own.value : undefined
    }
    const row = newest((await askGroup(this.c, group, { op: 'get', bucket, key }, options)).map(r => r.res.row))
    return row?.live === true ? row.value : undefined
  }

  async putIn (group: string, bucket: string, key: string, value: Uint8Array, options: AbortOptions = {}): Promise<void> {
    await this.write(group, { op: 'write', bucket, key, live: true, value }, options)
  }

  async removeIn (group: string, bucket: string, key: string, options: AbortOptions = {}): Promise<void> {
    await this.write(group, { op: 'write', bucket, key, live: false }, options)
  }

  async listIn (group: string, bucket: string, after: string, limit: number, options: AbortOptions & { prefix?: string } = {}): Promise<{ rows: Array<{ key: string, value: Uint8Array }>, next?: string }> {
    const prefix = options.prefix ?? ''
    const rows: Array<{ key: string, value: Uint8Array }> = []
    let cursor = after
    // A page of one member can be mostly tombstones: ask again from where the merge stopped until the page is full.
    for (;;) {
      const replies = await askGroup(this.c, group, { op: 'list', bucket, after: cursor, limit: MAX_NAME_ROWS }, options)
      const page = mergePages(replies.map(r => ({ rows: r.res.rows ?? [], more: r.res.more === true })))
      for (const row of page.rows) {
        if (prefix !== '' && !row.key.startsWith(prefix)) {
          if (row.key > prefix) return { rows }
          continue
        }
        if (rows.length === limit) return { rows, next: rows.at(-1)?.key }
        rows.push({ key: row.key, value: row.value as Uint8Array })
      }
      if (!page.more || page.last == null) return { rows }
      cursor = page.last
    }
  }

  /** Send a write to a member of `group`: ourselves if we are one, else each ACTIVE member in turn until one takes it. */
  private async write (group: string, req: NamesRequest, options: AbortOptions): Promise<NamesResponse> {
    const members = this.c.view.groupMembers(group).filter(m => m.state === 'ACTIVE').sort((a, b) => Number(b.self) - Number(a.self))
    if (members.length === 0) throw new UnavailableError(`group ${group} has no ACTIVE member right now; nothing was written — retry`)
    let last: Error | undefined
    for (const m of members) {
      try {
        return await this.ask(m.peerId, req, options)
      } catch (err) {
        // Only an unreachable member is worth another try; a refusal (exists, not empty, quorum) is the answer.
        if (!(err instanceof UnavailableError) || options.signal?.aborted === true) throw err
        last = err
      }
    }
    throw last ?? new UnavailableError(`no member of ${group} took the write`)
  }

  private async ask (peer: string, req: NamesRequest, options: AbortOptions): Promise<NamesResponse> {
    try {
      return await askMember(this.c, peer, req, options)
    } catch (err) {
      // A named refusal keeps its meaning (RemoteError with its code); anything else is "unavailable".
      if (err instanceof DsmError) throw err
      throw new UnavailableError(`names request to ${peer.slice(-8)} failed: ${toError(err).message}`)
    }
  }
}

export type { NameRowWire }
