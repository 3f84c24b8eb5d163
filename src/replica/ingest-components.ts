/**
 * What an upload's coordinator works with (./ingest.ts), and the one thing
 * that differs between a one-chunk upload and a big one: how the body gets
 * to this node's disk and to the members (an UploadTransfer).
 */
import type { Channels } from './channel.ts'
import type { CopyAttempt } from './commit.ts'
import type { Logger } from '../logger.ts'
import type { Manifest } from '../content/manifest.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { MembershipView } from '../membership/view.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { PreparedUpload } from '../store/prepared.ts'
import type { PrepareFrame } from '../wire/messages.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

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
  /** Upload channels to the members (one-chunk uploads go there: ./transfer-channel.ts). */
  channels?: Channels
}

/** The body as received: its chunk hashes in order, its size, and its first bytes (to sniff the type). */
export interface ReceivedBody {
  digests: Uint8Array[]
  size: number
  head: Uint8Array | undefined
}

export interface ReceiveOptions extends AbortOptions {
  maxBytes: number
  /** Called between chunks: throws once the quorum is out of reach (members dropped out). */
  checkQuorum: () => void
}

/**
 * How an upload's bytes reach this node's disk and its members, and how each
 * copy is prepared. ./ingest.ts runs the same sequence over either kind.
 */
export interface UploadTransfer<C extends CopyAttempt = CopyAttempt> {
  /** The members' copies in progress (members that could not be reached are not among them). */
  readonly copies: C[]
  /** Members that could not be reached, with why. */
  readonly unreachable: Array<{ peer: string, why: string }>
  receive (source: AsyncIterable<Uint8Array | Uint8ArrayList>, options: ReceiveOptions): Promise<ReceivedBody>
  /** Our own copy: the chunks durable, then the prepared record (./commit.ts). */
  prepareLocal (upload: PreparedUpload, manifest: Manifest, options: AbortOptions): Promise<void>
  /** A member's copy: it holds every chunk and the prepared record durably. */
  prepareCopy (copy: C, frame: PrepareFrame, options: AbortOptions): Promise<void>
  /** The upload failed: stop sending. */
  abort (err: Error): void
  /** Release what the upload held; collect its chunks unless it committed. */
  finish (committed: boolean): Promise<void>
}
