/**
 * Groups in the DHT: every member provides the key derived from its group's
 * name, so any node that reached the DHT through one bootstrap peer can find
 * a group's members before gossip has told it anything. kad-dht re-provides
 * the record before it expires; we provide again after every start.
 *
 * S3 buckets likewise: the members of the group that owns a bucket provide
 * the bucket's key, so any node finds the owning group's members through the
 * DHT (replica/namespace.ts ownerOf).
 */
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { REQUEST_TIMEOUT_MS } from '../constants.ts'
import { withDefaultTimeout } from '../wire/rpc.ts'
import type { KadDHT } from '@libp2p/kad-dht'
import type { AbortOptions, PeerInfo } from '@libp2p/interface'

/** The DHT key of a group: CIDv1(raw, sha256("dsm:group:" + name)). */
export async function groupKey (name: string): Promise<CID> {
  const digest = await sha256.digest(new TextEncoder().encode(`dsm:group:${name}`))
  return CID.createV1(raw.code, digest)
}

/** The DHT key of an S3 bucket: CIDv1(raw, sha256("dsm:bucket:" + name)). */
export async function bucketKey (name: string): Promise<CID> {
  const digest = await sha256.digest(new TextEncoder().encode(`dsm:bucket:${name}`))
  return CID.createV1(raw.code, digest)
}

export interface GroupDirectoryComponents {
  dht: Pick<KadDHT, 'provide' | 'findProviders' | 'cancelReprovide'>
}

export class GroupDirectory {
  private readonly dht: GroupDirectoryComponents['dht']

  constructor (components: GroupDirectoryComponents) {
    this.dht = components.dht
  }

  /** Provide our membership of `group`; resolves when the record is stored on the closest peers. */
  async announce (group: string, options: AbortOptions = {}): Promise<void> {
    await this.provide(await groupKey(group), options)
  }

  /** Stop providing a group we left. */
  async withdraw (group: string, options: AbortOptions = {}): Promise<void> {
    await this.dht.cancelReprovide(await groupKey(group), options)
  }

  /** Provide that our group owns `bucket`. */
  async announceBucket (bucket: string, options: AbortOptions = {}): Promise<void> {
    await this.provide(await bucketKey(bucket), options)
  }

  /** Stop providing a bucket that was deleted (or that our group no longer owns). */
  async withdrawBucket (bucket: string, options: AbortOptions = {}): Promise<void> {
    await this.dht.cancelReprovide(await bucketKey(bucket), options)
  }

  /** Members of `group` according to the DHT (peer ids with the addresses the records carry). */
  async findMembers (group: string, options: AbortOptions & { limit?: number } = {}): Promise<PeerInfo[]> {
    return this.providers(await groupKey(group), options)
  }

  /** Members of the group that owns `bucket`, according to the DHT. */
  async findBucketHolders (bucket: string, options: AbortOptions & { limit?: number } = {}): Promise<PeerInfo[]> {
    return this.providers(await bucketKey(bucket), options)
  }

  private async provide (key: CID, options: AbortOptions): Promise<void> {
    for await (const _ of this.dht.provide(key, { signal: options.signal })) { /* drain the query */ }
  }

  private async providers (key: CID, options: AbortOptions & { limit?: number }): Promise<PeerInfo[]> {
    const signal = withDefaultTimeout(options, REQUEST_TIMEOUT_MS)
    const found = new Map<string, PeerInfo>()
    for await (const event of this.dht.findProviders(key, { signal })) {
      if (event.name !== 'PROVIDER') continue
      for (const p of event.providers) found.set(p.id.toString(), p)
      if (options.limit != null && found.size >= options.limit) break
    }
    return [...found.values()]
  }
}
