/** What an upload's coordinator works with, for both write paths (./ingest.ts, ./ingest-small.ts). */
import type { Channels } from './channel.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { MembershipView } from '../membership/view.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { Dialer } from '../wire/rpc.ts'

export interface IngestComponents {
  selfId: string
  store: LocalStore
  status: LocalStatus
  view: MembershipView
  dialer: Dialer
  logger: Logger
  chunkSize?: number
  /** The copy floor (--min-copies); null: 2, or a numeric write quorum if smaller. */
  minCopies?: number | null
  /** Upload channels to the members (one-chunk uploads go there: ./ingest-small.ts). */
  channels?: Channels
}
