/** Listing files: each group answers for its own files (`/dsm/list/1.0.0`). */
import { rpcHandler } from '../wire/handlers.ts'
import type { ProtocolHandler } from '../wire/handlers.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { toError } from '../errors.ts'
import { ListRequestSchema, ListResponseSchema, PROTOCOLS } from '../wire/messages.ts'
import { request } from '../wire/rpc.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { MembershipView } from '../membership/view.ts'
import type { FileIndex } from '../store/file-index.ts'
import type { FileSummary, ListResponse } from '../wire/messages.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions } from '@libp2p/interface'

/** Most files one listing returns (per group). */
export const MAX_LIST_FILES_PER_GROUP = 10_000

export interface FileListing extends Omit<FileSummary, 'seq'> {
  group: string
  /** ACTIVE members of the group: the copies a read can use. */
  copies: number
}

export function answerList (index: FileIndex, group: string | null, afterSeq: number, limit: number): ListResponse {
  const rows = index.listPresent(afterSeq, limit + 1)
  return {
    group,
    files: rows.slice(0, limit).map(r => ({ id: r.id, size: r.size, name: r.name, mime: r.mime, createdAt: r.createdAt, chunks: r.chunkCount, seq: r.seq })),
    more: rows.length > limit
  }
}

export interface ListComponents {
  store: { index: FileIndex }
  status: LocalStatus
  view: MembershipView
  dialer: Dialer
  logger: Logger
}

/** Every group's files, asking one ACTIVE member per group (ourselves for our own). */
export async function listCluster (c: ListComponents, options: AbortOptions = {}): Promise<FileListing[]> {
  const groups = c.view.groups()
  const perGroup = await Promise.all(groups.map(async g => {
    const active = g.members.filter(m => m.state === 'ACTIVE').sort((a, b) => Number(b.self) - Number(a.self) || a.load - b.load)
    for (const m of active) {
      try {
        return { group: g.name, copies: active.length, files: await listMember(c, m.peerId, m.self, options) }
      } catch (err) {
        c.logger.debug({ err: toError(err).message, peer: m.peerId.slice(-8) }, 'list failed; asking another member')
      }
    }
    return { group: g.name, copies: active.length, files: [] }
  }))
  return perGroup.flatMap(g => g.files.map(({ seq: _seq, ...f }) => ({ ...f, group: g.group, copies: g.copies })))
    .sort((a, b) => b.createdAt - a.createdAt)
}

async function listMember (c: ListComponents, peer: string, self: boolean, options: AbortOptions): Promise<FileSummary[]> {
  const files: FileSummary[] = []
  let afterSeq = 0
  while (files.length < MAX_LIST_FILES_PER_GROUP) {
    const page = self
      ? answerList(c.store.index, c.status.group, afterSeq, 1000)
      : await request(c.dialer, peerIdFromString(peer), PROTOCOLS.list, ListRequestSchema, { afterSeq, limit: 1000 }, ListResponseSchema, options)
    files.push(...page.files)
    if (!page.more || page.files.length === 0) break
    afterSeq = page.files.at(-1)?.seq ?? afterSeq
  }
  return files
}

/** `/dsm/list`: a page of the files this node holds. */
export function listHandler (index: FileIndex, status: Pick<LocalStatus, 'group'>): ProtocolHandler {
  return rpcHandler(PROTOCOLS.list, ListRequestSchema, ListResponseSchema, async (req) => answerList(index, status.group, req.afterSeq, req.limit))
}
