/**
 * Group summaries: how a node finds the group of a file it does not hold in
 * one request instead of asking a member of every group.
 *
 * Each member keeps a Bloom filter of the files it holds (OwnSummary),
 * updated as files arrive and rebuilt when deletes or growth spoil it, and
 * hands it out on `/dsm/summary/1.0.0` together with its log head. A reader
 * (GroupSummaries) fetches the summaries of the groups it reads from, in the
 * background and at most every `refreshMinMs` per group, and keeps each until
 * the member's heartbeat shows a newer log head (then it is stale, not wrong:
 * it still holds every older file). The locator asks the groups whose filter
 * says "probably" first, then those without a fresh summary, then the rest —
 * so a false positive costs one request, and a file too new for any summary
 * is still found, as before, by asking every group.
 *
 * Memory: ~10 bits per file of the cluster on a reader that read from every
 * group (12.5 MB for 10 million files), nothing per file anywhere else.
 */
import { rpcHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { frameBytesFor } from '../wire/answer.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { NotAMemberError, toError } from '../errors.ts'
import { BloomFilter } from './bloom.ts'
import { PROTOCOLS, SUMMARY_MAX_BYTES, SummaryRequestSchema, SummaryResponseSchema } from '../wire/messages.ts'
import { request } from '../wire/rpc.ts'
import type { Logger } from '../logger.ts'
import type { MembershipView } from '../membership/view.ts'
import type { FileIndex } from '../store/file-index.ts'
import type { SummaryResponse } from '../wire/messages.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { Dialer } from '../wire/rpc.ts'

/** A group's summary is fetched again no sooner than this after the last fetch, however stale. */
export const SUMMARY_REFRESH_MIN_MS = 30_000
/** Summaries fetched at once by one reader. */
const SUMMARY_FETCH_CONCURRENCY = 4
const SUMMARY_TIMEOUT_MS = 5_000
/** Present files read from the index at a time while a filter is built. */
const BUILD_PAGE = 10_000

/** The member's side: a filter of the files it holds. */
export class OwnSummary {
  private readonly index: FileIndex
  private filter?: BloomFilter
  private deletes = 0

  constructor (index: FileIndex) {
    this.index = index
  }

  added (id: string): void {
    if (this.filter == null) return
    // Past its capacity the filter's false positives grow: rebuild it bigger when next asked.
    if (this.filter.count >= this.filter.capacity) this.filter = undefined
    else this.filter.add(id)
  }

  deleted (): void {
    // A Bloom filter cannot forget: deleted files stay "probably" until a rebuild, which a quarter of deletes earns.
    if (this.filter != null && ++this.deletes > this.filter.count / 4) this.filter = undefined
  }

  answer (group: string): SummaryResponse {
    this.filter ??= this.build()
    return { group, head: this.index.head(), count: this.filter.count, hashes: this.filter.hashes, bits: this.filter.bits }
  }

  private build (): BloomFilter {
    const present = this.index.stats().present.files
    // Room to double before the next rebuild, within what one answer may carry.
    const filter = BloomFilter.forCapacity(Math.min(2 * present, Math.floor(SUMMARY_MAX_BYTES * 8 / 10)))
    for (let after = 0, page = this.index.listPresent(0, BUILD_PAGE); page.length > 0; page = this.index.listPresent(after, BUILD_PAGE)) {
      for (const row of page) filter.add(row.id)
      after = (page.at(-1) as { seq: number }).seq
    }
    this.deletes = 0
    return filter
  }
}

export type Verdict = 'probably' | 'unknown' | 'no'

interface Held { from: string, head: number, filter: BloomFilter, at: number }

export interface GroupSummariesComponents {
  dialer: Dialer
  view: MembershipView
  /** Peers we hold a connection to (asked first: no handshake). */
  connectedPeers: () => Set<string>
  logger: Logger
}

/** The reader's side: the summaries of other groups it has fetched. */
export class GroupSummaries {
  /** Fetches done and failed, for metrics and tests. */
  readonly counters = { fetched: 0, failed: 0 }
  private readonly c: GroupSummariesComponents
  private readonly refreshMinMs: number
  private readonly held = new Map<string, Held>()
  private readonly lastTry = new Map<string, number>()
  private readonly queue: string[] = []
  private running = 0

  constructor (components: GroupSummariesComponents, init: { refreshMinMs?: number } = {}) {
    this.c = components
    this.refreshMinMs = init.refreshMinMs ?? SUMMARY_REFRESH_MIN_MS
  }

  /** What the group's summary says about `id`: "unknown" when we have none or it is stale. */
  verdict (group: string, id: string): Verdict {
    const h = this.held.get(group)
    if (h == null || this.stale(h)) return 'unknown'
    return h.filter.has(id) ? 'probably' : 'no'
  }

  /** Filter bytes held (memory). */
  get bytes (): number {
    let n = 0
    for (const h of this.held.values()) n += h.filter.bits.byteLength
    return n
  }

  /**
   * The cluster's groups now: fetch, in the background, the summaries that are missing or stale (each at most
   * every refreshMinMs), and drop those of groups that are gone.
   */
  refresh (groups: string[]): void {
    const now = Date.now()
    const live = new Set(groups)
    for (const g of this.held.keys()) if (!live.has(g)) this.held.delete(g)
    for (const g of groups) {
      const h = this.held.get(g)
      if (h != null && !this.stale(h)) continue
      if (now - (this.lastTry.get(g) ?? -Infinity) < this.refreshMinMs || this.queue.includes(g)) continue
      this.lastTry.set(g, now)
      this.queue.push(g)
    }
    this.drain()
  }

  private drain (): void {
    while (this.running < SUMMARY_FETCH_CONCURRENCY && this.queue.length > 0) {
      const g = this.queue.shift() as string
      this.running++
      // Failures are counted and logged here: a missing summary only means the group is asked in the later waves.
      void this.fetch(g).finally(() => { this.running--; this.drain() })
    }
  }

  private stale (h: Held): boolean {
    const m = this.c.view.get(h.from)
    return m == null || m.state === 'OFFLINE' || m.sync.head > h.head
  }

  private async fetch (group: string): Promise<void> {
    const connected = this.c.connectedPeers()
    const members = this.c.view.groupMembers(group).filter(m => m.state === 'ACTIVE' && !m.self)
      .sort((a, b) => Number(connected.has(b.peerId)) - Number(connected.has(a.peerId)) || a.load - b.load)
    const from = members[0]?.peerId
    if (from == null) return
    try {
      const res = await request(this.c.dialer, peerIdFromString(from), PROTOCOLS.summary, SummaryRequestSchema, { group }, SummaryResponseSchema,
        { signal: AbortSignal.timeout(SUMMARY_TIMEOUT_MS), maxResponseBytes: frameBytesFor(SUMMARY_MAX_BYTES) })
      if (res.group !== group) throw new Error(`asked for ${group}'s summary, got ${res.group}'s`)
      this.held.set(group, { from, head: res.head, filter: new BloomFilter(res.bits, res.hashes, res.count), at: Date.now() })
      this.counters.fetched++
    } catch (err) {
      this.counters.failed++
      // Nothing was gained: the next cold read may try again (the interval bounds what summaries cost, not failures).
      this.lastTry.delete(group)
      this.c.logger.debug({ group, from: from.slice(-8), err: toError(err).message }, 'could not fetch a group summary')
    }
  }
}

/** `/dsm/summary`: the Bloom summary of the files this node's group holds. */
export function summaryHandler (own: OwnSummary, status: Pick<LocalStatus, 'group'>): ProtocolHandler {
  return rpcHandler(PROTOCOLS.summary, SummaryRequestSchema, SummaryResponseSchema, async (req) => {
    if (status.group !== req.group) throw new NotAMemberError(`not a member of ${req.group}`)
    return own.answer(req.group)
  })
}
