/**
 * Provides every file this node holds in the DHT (kad-dht re-provides them
 * before the records expire), in the background: a provide takes seconds on a
 * large cluster, so nothing user-facing ever waits for one. After a restart
 * every present file is queued again.
 */
import { Queue } from '@libp2p/utils'
import { toError } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { KadDHT } from '@libp2p/kad-dht'
import type { CID } from 'multiformats/cid'

export const ANNOUNCE_CONCURRENCY = 2
export const ANNOUNCE_QUEUE_MAX = 100_000

export class FileAnnouncer {
  private readonly dht: Pick<KadDHT, 'provide' | 'cancelReprovide'>
  private readonly logger: Logger
  private readonly queue = new Queue<void>({ concurrency: ANNOUNCE_CONCURRENCY, maxSize: ANNOUNCE_QUEUE_MAX })
  private readonly controller = new AbortController()

  constructor (dht: Pick<KadDHT, 'provide' | 'cancelReprovide'>, logger: Logger) {
    this.dht = dht
    this.logger = logger
  }

  announce (cid: CID): void {
    if (this.controller.signal.aborted || this.queue.size >= ANNOUNCE_QUEUE_MAX) return
    const signal = this.controller.signal
    this.queue.add(async () => {
      for await (const _ of this.dht.provide(cid, { signal })) { /* drain the query */ }
    }).catch(err => {
      if (!signal.aborted) this.logger.debug({ err: toError(err).message, cid: cid.toString() }, 'provide failed')
    })
  }

  /** Stop re-providing a file we no longer hold. */
  withdraw (cid: CID): void {
    this.dht.cancelReprovide(cid).catch(err => { this.logger.debug({ err: toError(err).message }, 'cancelReprovide failed') })
  }

  stop (): void {
    this.controller.abort()
    this.queue.clear()
  }
}
