/**
 * Deciding prepared uploads whose decision never arrived (the coordinator
 * died, a stream broke, this node restarted): see ./commit.ts for the rule.
 * Every RESOLVE_INTERVAL a member looks at its prepared records older than
 * `resolveAfterMs` and, for each:
 *
 *  0. already settled here (sync brought the file, or a newer operation on
 *     it): the record is dropped;
 *  1. asks the coordinator (`/dsm/outcome/1.0.0`): committed → commit;
 *     unknown or superseded → abort; undecided or unreachable → 2;
 *  2. asks the other planned copies (the members, the coordinator): one
 *     committed, or enough prepared for the upload's quorum → commit; on the
 *     coordinator, for an upload of an earlier run that every member lacks
 *     (each answered "unknown" or "superseded") → abort: it never had its
 *     quorum, so it was never acknowledged;
 *  3. the coordinator has been gone for `coordinatorGoneMs` (OFFLINE that
 *     long, or forgotten): commit — its copy may be lost with it, ours is
 *     complete and verified, and committing an upload that was perhaps not
 *     acknowledged only makes it visible everywhere (all or nothing);
 *  4. otherwise waits: it never aborts for want of answers.
 */
import { rpcHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { UnavailableError, toError } from '../errors.ts'
import { isNewer } from '../store/file-index.ts'
import { monotonicNow } from '../util/time.ts'
import { OutcomeRequestSchema, OutcomeResponseSchema, PROTOCOLS } from '../wire/messages.ts'
import { request } from '../wire/rpc.ts'
import type { Logger } from '../logger.ts'
import type { MembershipView } from '../membership/view.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { PreparedUpload, UploadKey } from '../store/prepared.ts'
import type { Outcome } from '../wire/messages.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions, Startable } from '@libp2p/interface'

/** A prepared record this old has lost its decision (a healthy upload decides in milliseconds). */
export const RESOLVE_AFTER_MS = 5_000
/** Records looked at per round. */
const RESOLVE_BATCH = 100
const ASK_TIMEOUT_MS = 3_000

export interface ResolverComponents {
  selfId: string
  store: LocalStore
  view: MembershipView
  dialer: Dialer
  logger: Logger
}

export interface ResolverInit {
  intervalMs: number
  resolveAfterMs?: number
  /** A coordinator OFFLINE this long (or forgotten) is gone (the --repair-after default). */
  coordinatorGoneMs: number
}

/** What this node can say about an upload (the `/dsm/outcome` answer). */
export function outcomeOf (store: LocalStore, key: UploadKey): Outcome {
  const row = store.index.get(key.id)
  if (row != null && row.state !== 'deleted' && row.ts === key.ts && row.origin === key.origin) return 'committed'
  if (row != null && isNewer(row, key)) return 'superseded'
  if (store.prepared.get(key) != null) return 'prepared'
  return 'unknown'
}

export class Resolver implements Startable {
  /** Decisions taken here, for metrics and tests. */
  readonly counters = { committed: 0, aborted: 0 }
  private readonly c: ResolverComponents
  private readonly init: ResolverInit
  private timer?: ReturnType<typeof setInterval>
  private running = false

  constructor (components: ResolverComponents, init: ResolverInit) {
    this.c = components
    this.init = init
  }

  async start (): Promise<void> {
    // round() reports its own failures (logged): the timer has nobody to tell.
    this.timer ??= setInterval(() => {
      this.current = this.round().catch(err => { this.c.logger.warn({ err: toError(err).message }, 'resolver round failed') })
    }, this.init.intervalMs)
  }

  /** Stop; a round in flight finishes first (it must not decide against a store that is stopping). */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.current
  }

  /** The timer's round in flight (its failure is logged). */
  private current?: Promise<void>

  /** One pass over the prepared records that waited long enough. */
  async round (options: AbortOptions = {}): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      const due = this.c.store.prepared.olderThan(monotonicNow() - (this.init.resolveAfterMs ?? RESOLVE_AFTER_MS), RESOLVE_BATCH)
      for (const u of due) {
        try {
          await this.decide(u, options)
        } catch (err) {
          this.c.logger.debug({ err: toError(err).message, id: u.id }, 'could not decide a prepared upload yet')
        }
      }
    } finally {
      this.running = false
    }
  }

  private async decide (u: PreparedUpload, options: AbortOptions): Promise<void> {
    const local = outcomeOf(this.c.store, u)
    if (local === 'committed' || local === 'superseded') return this.settle(u, 'abort', 'already settled here')
    if (u.origin !== this.c.selfId) {
      const said = await this.ask(u.origin, u, options)
      if (said === 'committed') return this.settle(u, 'commit', 'the coordinator committed it')
      if (said === 'unknown' || said === 'superseded') return this.settle(u, 'abort', `the coordinator says ${said}`)
    }
    const others = [...new Set([...u.members, u.origin])].filter(p => p !== this.c.selfId)
    const answers = await Promise.all(others.map(async p => this.ask(p, u, options)))
    if (answers.includes('committed')) return this.settle(u, 'commit', 'a member committed it')
    // A newer operation on the file exists: committing this older copy could only be served until sync overwrites it.
    if (answers.includes('superseded')) return this.settle(u, 'abort', 'a member holds a newer operation on the file')
    const copies = 1 + answers.filter(a => a === 'prepared').length
    if (copies >= u.copies) return this.settle(u, 'commit', `${copies} of the ${u.copies} copies it needed are prepared`)
    // Our own upload from before a restart, and every member has said it lacks it: it never had its quorum, so
    // it was never acknowledged, and no member can prepare it now (its streams died with that process).
    if (u.origin === this.c.selfId && !this.c.store.preparedByThisProcess(u) && answers.every(a => a != null)) {
      return this.settle(u, 'abort', `only ${copies} of the ${u.copies} copies it needed were prepared when this coordinator stopped`)
    }
    if (u.origin !== this.c.selfId && this.coordinatorGone(u.origin)) return this.settle(u, 'commit', 'its coordinator is gone')
  }

  private async settle (u: PreparedUpload, decision: 'commit' | 'abort', why: string): Promise<void> {
    if (decision === 'commit') {
      await this.c.store.commitPrepared(u)
      this.counters.committed++
    } else {
      await this.c.store.abortPrepared(u)
      this.counters.aborted++
    }
    this.c.logger.info({ id: u.id, decision, why }, 'decided a prepared upload whose decision was lost')
  }

  private coordinatorGone (peer: string): boolean {
    const m = this.c.view.get(peer)
    if (m == null) return true
    return m.state === 'OFFLINE' && monotonicNow() - (m.offlineSince ?? m.lastSeen) >= this.init.coordinatorGoneMs
  }

  private async ask (peer: string, key: UploadKey, options: AbortOptions): Promise<Outcome | undefined> {
    try {
      const res = await request(this.c.dialer, peerIdFromString(peer), PROTOCOLS.outcome, OutcomeRequestSchema,
        { id: key.id, ts: key.ts, origin: key.origin }, OutcomeResponseSchema, { signal: AbortSignal.any([AbortSignal.timeout(ASK_TIMEOUT_MS), ...(options.signal != null ? [options.signal] : [])]) })
      return res.state
    } catch {
      return undefined
    }
  }
}

/** `/dsm/outcome`: a member asks this coordinator what became of an upload it prepared. */
export function outcomeHandler (store: LocalStore): ProtocolHandler {
  return rpcHandler(PROTOCOLS.outcome, OutcomeRequestSchema, OutcomeResponseSchema, async (req) => {
    // Still being decided here (our own prepare may not have finished): an answer now could only be a wrong "unknown".
    if (store.deciding(req)) throw new UnavailableError('this upload is still being decided; ask again')
    return { state: outcomeOf(store, req) }
  })
}
