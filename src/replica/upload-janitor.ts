/**
 * Drops multipart uploads left unfinished (S3 keeps them until a lifecycle
 * rule removes them; dsm removes them after `expiryMs`, a week by default):
 * their rows go from the bucket's table and their parts with them. One
 * member of each group does it — the ACTIVE one with the lowest peer id, so
 * the group does not drop the same upload twice — from the rows on its own
 * disk (every member holds the whole table), through the namespace like any
 * write (replicated, acknowledged at the copy floor).
 */
import { Periodic } from '../util/periodic.ts'
import { decodeMessage } from '../wire/codec.ts'
import { MAX_NAME_VALUE_BYTES, UploadRecordSchema } from '../wire/names.ts'
import { INTERNAL_KEY_PREFIX } from './namespace.ts'
import type { Namespace } from './namespace.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { MembershipView } from '../membership/view.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { Startable } from '@libp2p/interface'

/** The prefix of an upload's row (`<prefix><id>`) and of its parts (`<prefix><id>/<n>`). */
export const UPLOAD_KEY_PREFIX = `${INTERNAL_KEY_PREFIX}u/`

export interface UploadJanitorComponents {
  store: LocalStore
  status: LocalStatus
  view: MembershipView
  names: Pick<Namespace, 'remove'>
  logger: Logger
}

export interface UploadJanitorInit {
  expiryMs: number
  /** How often the table is looked through (default: a tenth of the expiry, between 1 s and 1 h). */
  intervalMs?: number
}

export class UploadJanitor implements Startable {
  private readonly c: UploadJanitorComponents
  private readonly expiryMs: number
  private readonly task: Periodic
  /** Uploads dropped (tests and logs). */
  dropped = 0

  constructor (components: UploadJanitorComponents, init: UploadJanitorInit) {
    this.c = components
    this.expiryMs = init.expiryMs
    const intervalMs = init.intervalMs ?? Math.min(3600_000, Math.max(1000, Math.floor(init.expiryMs / 10)))
    this.task = new Periodic(intervalMs, async (signal) => { if (this.mine()) await this.sweep(signal) },
      (err) => { this.c.logger.warn({ err: err.message }, 'could not drop expired multipart uploads') })
  }

  async start (): Promise<void> {
    this.task.start()
  }

  async stop (): Promise<void> {
    await this.task.stop()
  }

  /** The group's ACTIVE member with the lowest peer id does the sweeping. */
  private mine (): boolean {
    const { status, view } = this.c
    if (status.state !== 'ACTIVE' || status.group == null) return false
    const active = view.groupMembers(status.group).filter(m => m.state === 'ACTIVE').map(m => m.peerId).sort()
    return active[0] === view.members().find(m => m.self)?.peerId
  }

  private async sweep (signal: AbortSignal): Promise<void> {
    const now = Date.now()
    for (const bucketRow of this.c.store.names.buckets()) {
      const bucket = bucketRow.bucket
      const expired: string[] = []
      const parts: string[] = []
      let after = INTERNAL_KEY_PREFIX
      for (;;) {
        const rows = this.c.store.names.list(bucket, after, 1000)
        const ours = rows.filter(r => r.key.startsWith(UPLOAD_KEY_PREFIX))
        for (const r of ours) {
          const rest = r.key.slice(UPLOAD_KEY_PREFIX.length)
          const slash = rest.indexOf('/')
          if (slash === -1) {
            if (r.value != null && decodeMessage(UploadRecordSchema, r.value, MAX_NAME_VALUE_BYTES).created + this.expiryMs < now) expired.push(rest)
          } else {
            parts.push(r.key)
          }
        }
        if (ours.length < rows.length || rows.length < 1000) break
        after = rows.at(-1)?.key ?? after
      }
      for (const id of expired) {
        for (const key of parts.filter(k => k.startsWith(`${UPLOAD_KEY_PREFIX}${id}/`))) await this.c.names.remove(bucket, key, { signal })
        await this.c.names.remove(bucket, `${UPLOAD_KEY_PREFIX}${id}`, { signal })
        this.dropped++
        this.c.logger.info({ bucket, upload: id }, 'dropped a multipart upload left unfinished')
      }
    }
  }
}
