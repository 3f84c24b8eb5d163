/**
 * The name log's sync (the S3 namespace, ./names.ts): a member pulls each
 * mate's name log after its cursor and applies the rows by stamp, as it does
 * the file log (./sync.ts runs both in the same round). Rows applied this way
 * are not forced to disk: should they be lost, the next pull brings them again.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { NotAMemberError } from '../errors.ts'
import { frameBytesFor } from '../wire/answer.ts'
import { rpcHandler } from '../wire/handlers.ts'
import { PROTOCOLS } from '../wire/messages.ts'
import { MAX_NAME_ROWS, MAX_NAME_VALUE_BYTES, NameSyncRequestSchema, NameSyncResponseSchema } from '../wire/names.ts'
import { request } from '../wire/rpc.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions } from '@libp2p/interface'

/** Rows per name sync page. */
export const NAME_SYNC_PAGE_ROWS = 500
const MAX_PAGE_BYTES = frameBytesFor(NAME_SYNC_PAGE_ROWS * (MAX_NAME_VALUE_BYTES + 2048))

/** Pull `peer`'s name log for `group` from our cursor to its head. */
export async function pullNames (c: { store: LocalStore, dialer: Dialer }, peer: string, group: string, options: AbortOptions): Promise<void> {
  for (;;) {
    const since = c.store.names.cursor(peer)
    const page = await request(c.dialer, peerIdFromString(peer), PROTOCOLS.nameSync, NameSyncRequestSchema,
      { group, since, limit: NAME_SYNC_PAGE_ROWS }, NameSyncResponseSchema, { ...options, maxResponseBytes: MAX_PAGE_BYTES })
    // Queued together, in log order: one transaction for the page.
    await Promise.all(page.entries.map(async e =>
      c.store.applyName({ bucket: e.bucket, key: e.key, group, live: e.live, ts: e.ts, origin: e.origin, ...(e.value != null ? { value: e.value } : {}) }, { durable: false })))
    c.store.names.setCursor(peer, Math.max(page.head, page.entries.at(-1)?.seq ?? since))
    if (!page.more) return
  }
}

/** `/dsm/name-sync`: a mate pulls our name log after its cursor. */
export function nameSyncHandler (c: { store: LocalStore, status: Pick<LocalStatus, 'group'> }): ProtocolHandler {
  return rpcHandler(PROTOCOLS.nameSync, NameSyncRequestSchema, NameSyncResponseSchema, async (req) => {
    if (c.status.group !== req.group) throw new NotAMemberError(`not a member of ${req.group}`)
    const limit = Math.min(req.limit, NAME_SYNC_PAGE_ROWS, MAX_NAME_ROWS)
    const entries = c.store.names.changesSince(req.group, req.since, limit)
    const more = entries.length === limit
    return {
      entries: entries.map(r => ({ bucket: r.bucket, key: r.key, live: r.live, ts: r.ts, origin: r.origin, seq: r.seq, ...(r.value != null ? { value: r.value } : {}) })),
      head: more ? (entries.at(-1)?.seq ?? req.since) : c.store.names.head(),
      more
    }
  })
}
