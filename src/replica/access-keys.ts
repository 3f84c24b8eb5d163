/**
 * S3 access keys, made and listed with the CLI (`dsm key create|list|delete`)
 * and kept like any bucket's keys: in the cluster's own table
 * (ACCESS_KEYS_BUCKET) of the namespace, replicated in its owning group.
 * A secret is never in clear at rest: the record holds it sealed with a key
 * derived from the cluster secret (one box per secret held, so a rotation of
 * the cluster secret keeps keys usable). Every node can open it, so any node
 * checks any request's signature; lookups are cached briefly.
 */
import { randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { BadRequestError, NoSuchBucketError } from '../errors.ts'
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { ACCESS_KEYS_BUCKET, AccessKeyRecordSchema, MAX_NAME_VALUE_BYTES, s3BucketName } from '../wire/names.ts'
import type { Namespace } from './namespace.ts'
import type { AccessKeyRecord } from '../wire/names.ts'
import type { AbortOptions } from '@libp2p/interface'

/** How long a looked-up key (or its absence) is remembered: a deleted key stops working within this. */
export const ACCESS_KEY_CACHE_MS = 10_000

export interface KeySealer {
  box (purpose: 'access-keys', data: Uint8Array): Uint8Array[]
  unbox (purpose: 'access-keys', boxes: Uint8Array[]): Uint8Array | undefined
}

export interface AccessKeySpec {
  /** Buckets it may use (empty: all). */
  buckets: string[]
  read: boolean
  write: boolean
  name?: string
}

export interface AccessKey extends AccessKeySpec {
  accessKeyId: string
  /** Only when made: never shown again. */
  secretAccessKey?: string
  created: number
}

export interface ResolvedKey { accessKeyId: string, secretAccessKey: string, buckets: string[], read: boolean, write: boolean }

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

function newKeyId (): string {
  return `DSM${[...randomBytes(17)].map(b => ID_ALPHABET[b % 32]).join('')}`
}

export class AccessKeys {
  private readonly names: Pick<Namespace, 'get' | 'put' | 'remove' | 'listRaw' | 'createBucket' | 'ownerOf'>
  private readonly sealer: KeySealer
  private readonly cache = new LRUCache<string, { key?: ResolvedKey }>({ max: 10_000, ttl: ACCESS_KEY_CACHE_MS })

  constructor (names: AccessKeys['names'], sealer: KeySealer) {
    this.names = names
    this.sealer = sealer
  }

  async create (spec: AccessKeySpec, options: AbortOptions = {}): Promise<AccessKey> {
    for (const b of spec.buckets) if (!s3BucketName.safeParse(b).success) throw new BadRequestError(`"${b}" is not a bucket name`)
    if (!spec.read && !spec.write) throw new BadRequestError('a key needs read, write or both')
    await this.ensureTable(options)
    const accessKeyId = newKeyId()
    const secretAccessKey = randomBytes(30).toString('base64url')
    const record: AccessKeyRecord = { sealed: this.sealer.box('access-keys', Buffer.from(secretAccessKey)), buckets: spec.buckets, read: spec.read, write: spec.write, created: Date.now(), ...(spec.name != null ? { name: spec.name } : {}) }
    await this.names.put(ACCESS_KEYS_BUCKET, accessKeyId, encodeMessage(AccessKeyRecordSchema, record), options)
    this.cache.delete(accessKeyId)
    return { accessKeyId, secretAccessKey, ...spec, created: record.created }
  }

  async list (options: AbortOptions = {}): Promise<AccessKey[]> {
    const out: AccessKey[] = []
    let after = ''
    for (;;) {
      const page = await this.names.listRaw(ACCESS_KEYS_BUCKET, after, 1000, options).catch((err: unknown) => {
        if (err instanceof NoSuchBucketError || (err as { code?: string }).code === 'ERR_NO_SUCH_BUCKET') return { rows: [] as Array<{ key: string, value: Uint8Array }>, next: undefined }
        throw err
      })
      for (const row of page.rows) {
        const r = decodeMessage(AccessKeyRecordSchema, row.value, MAX_NAME_VALUE_BYTES)
        out.push({ accessKeyId: row.key, buckets: r.buckets, read: r.read, write: r.write, created: r.created, ...(r.name != null ? { name: r.name } : {}) })
      }
      if (page.next == null) return out
      after = page.next
    }
  }

  async delete (accessKeyId: string, options: AbortOptions = {}): Promise<void> {
    await this.names.remove(ACCESS_KEYS_BUCKET, accessKeyId, options)
    this.cache.delete(accessKeyId)
  }

  /** The key and its secret, for checking a signature; undefined when it does not exist. */
  async resolve (accessKeyId: string, options: AbortOptions = {}): Promise<ResolvedKey | undefined> {
    if (!/^DSM[A-Z2-7]{17}$/.test(accessKeyId)) return undefined
    const cached = this.cache.get(accessKeyId)
    if (cached != null) return cached.key
    const value = await this.names.get(ACCESS_KEYS_BUCKET, accessKeyId, options).catch((err: unknown) => {
      if ((err as { code?: string }).code === 'ERR_NO_SUCH_BUCKET') return undefined
      throw err
    })
    let key: ResolvedKey | undefined
    if (value != null) {
      const r = decodeMessage(AccessKeyRecordSchema, value, MAX_NAME_VALUE_BYTES)
      const secret = this.sealer.unbox('access-keys', r.sealed)
      if (secret != null) key = { accessKeyId, secretAccessKey: Buffer.from(secret).toString('utf8'), buckets: r.buckets, read: r.read, write: r.write }
    }
    this.cache.set(accessKeyId, key != null ? { key } : {})
    return key
  }

  /** The cluster's key table is a bucket of its own, made on first use. */
  private async ensureTable (options: AbortOptions): Promise<void> {
    await this.names.ownerOf(ACCESS_KEYS_BUCKET, options).catch(async (err: unknown) => {
      if ((err as { code?: string }).code !== 'ERR_NO_SUCH_BUCKET') throw err
      await this.names.createBucket(ACCESS_KEYS_BUCKET, { created: Date.now(), publicRead: false }, options).catch((e: unknown) => {
        // Made by another node meanwhile: fine.
        if ((e as { code?: string }).code !== 'ERR_BUCKET_EXISTS') throw e
      })
    })
  }
}
