/**
 * The DHT as the tracker, read: when this node's view lacks a group it needs
 * — a joiner checking its configured group, a restarted member whose mates
 * gossip has not shown yet, a reader of a file of a group it has not heard
 * of — the group's members are looked up in the DHT (every member provides
 * its group's key, ./group-directory.ts), dialled, and asked for their
 * records directly, so the view has them before gossip would.
 *
 * The same for an S3 bucket whose owning group this node cannot tell: the
 * owning group's members provide the bucket's key; they are dialled and asked
 * for their records, and their groups are the answer.
 *
 * One lookup per group (or bucket) at a time; one looked up lately is not
 * looked up again before FIND_COOLDOWN_MS (a hot read path must not flood the
 * DHT).
 */
import { toError } from '../errors.ts'
import type { GroupDirectory } from './group-directory.ts'
import type { Logger } from '../logger.ts'
import type { MembershipView } from '../membership/view.ts'
import type { AbortOptions, PeerInfo } from '@libp2p/interface'

/** A group is looked up at most this often. */
export const FIND_COOLDOWN_MS = 2_000
/**
 * …and, after lookups that named nobody (a group of one: ours; or records
 * not provided yet), at most this often: the wait doubles from
 * FIND_COOLDOWN_MS with each miss in a row, so a lonely member does not
 * query for ever and a joiner whose mates provide their records a moment
 * later is not held back half a minute.
 */
export const FIND_MISS_COOLDOWN_MS = 30_000
/** Members dialled per lookup (the group's records come from any of them). */
export const FIND_MEMBERS_LIMIT = 8

export interface GroupFinderComponents {
  selfId: string
  directory: Pick<GroupDirectory, 'findMembers' | 'findBucketHolders'>
  view: Pick<MembershipView, 'groupMembers' | 'get'>
  /** Dial a peer named by the DHT, with the addresses of its provider record. */
  connect: (peer: PeerInfo, options: AbortOptions) => Promise<void>
  /** Ask these peers for `group`'s membership records, or all they know (the view takes them as if gossiped). */
  refresh: (group: string | undefined, peers: string[], options: AbortOptions) => Promise<void>
  logger: Logger
}

export class GroupFinder {
  /** Lookups made, lookups that named a member, failed lookups, and the time they took (metrics). */
  readonly counters = { lookups: 0, hits: 0, failures: 0, seconds: 0 }
  private readonly c: GroupFinderComponents
  private readonly inFlight = new Map<string, Promise<string[]>>()
  /** When each group may be looked up again (performance.now() ms). */
  private readonly notBefore = new Map<string, number>()
  /** Lookups in a row that named nobody, per group. */
  private readonly misses = new Map<string, number>()

  constructor (components: GroupFinderComponents) {
    this.c = components
  }

  /** Whether the view knows a member of `group` other than this node that is not OFFLINE. */
  knows (group: string): boolean {
    return this.c.view.groupMembers(group).some(m => !m.self && m.state !== 'OFFLINE')
  }

  /**
   * Make the view know `group`'s members if it does not: a DHT lookup, the
   * members dialled and asked for their records. Resolves with the peers the
   * DHT named ([] when the view already knew the group, the lookup is cooling
   * down, or it found nobody); never rejects.
   */
  async find (group: string, options: AbortOptions = {}): Promise<string[]> {
    if (this.knows(group)) return []
    return this.once(`group:${group}`, async () => {
      const peers = await this.lookup(async (o) => this.c.directory.findMembers(group, o), group, options)
      if (peers.length > 0) this.c.logger.info({ group, members: peers.length }, 'found a group\'s members through the DHT before gossip')
      return peers
    })
  }

  /**
   * The groups whose members provide `bucket`'s key (the group that owns it;
   * two while a bucket moves), with their members now in the view; [] when
   * the DHT names nobody or the lookup is cooling down. Never rejects.
   */
  async findBucket (bucket: string, options: AbortOptions = {}): Promise<string[]> {
    return this.once(`bucket:${bucket}`, async () => {
      const peers = await this.lookup(async (o) => this.c.directory.findBucketHolders(bucket, o), undefined, options)
      return [...new Set(peers.flatMap(p => this.c.view.get(p)?.group ?? []))]
    })
  }

  /** One lookup of `key` at a time, and none while it cools down (longer after lookups that found nobody). */
  private async once (key: string, run: () => Promise<string[]>): Promise<string[]> {
    const running = this.inFlight.get(key)
    if (running != null) return running
    if (performance.now() < (this.notBefore.get(key) ?? -Infinity)) return []
    this.notBefore.set(key, performance.now() + FIND_COOLDOWN_MS)
    const lookup = run().then(found => {
      if (found.length > 0) { this.misses.delete(key); return found }
      const misses = (this.misses.get(key) ?? 0) + 1
      this.misses.set(key, misses)
      this.notBefore.set(key, performance.now() + Math.min(FIND_MISS_COOLDOWN_MS, FIND_COOLDOWN_MS * 2 ** misses))
      return found
    }).finally(() => { this.inFlight.delete(key) })
    this.inFlight.set(key, lookup)
    return lookup
  }

  /** Providers of a key (not us), dialled and asked for their records; their peer ids. */
  private async lookup (providers: (options: AbortOptions & { limit: number }) => Promise<PeerInfo[]>, group: string | undefined, options: AbortOptions): Promise<string[]> {
    const started = performance.now()
    this.counters.lookups++
    try {
      const found = (await providers({ ...options, limit: FIND_MEMBERS_LIMIT + 1 })).filter(p => p.id.toString() !== this.c.selfId).slice(0, FIND_MEMBERS_LIMIT)
      if (found.length === 0) return []
      this.counters.hits++
      await Promise.allSettled(found.map(async p => this.c.connect(p, options)))
      const peers = found.map(p => p.id.toString())
      await this.c.refresh(group, peers, options)
      return peers
    } catch (err) {
      this.counters.failures++
      this.c.logger.debug({ group, err: toError(err).message }, 'DHT lookup failed')
      return []
    } finally {
      this.counters.seconds += (performance.now() - started) / 1000
    }
  }
}
