/**
 * Provides, in the DHT, the key of every bucket this node's group owns
 * (dht/group-directory.ts), so that any node can find a bucket's group
 * through the tracker (./namespace.ts ownerOf): every bucket record in our
 * table when the node has a group, each new bucket as its record arrives;
 * withdrawn when the bucket is deleted or the node leaves the group.
 */
import { toError } from '../errors.ts'
import { BUCKET_RECORD_KEY } from '../store/name-index.ts'
import type { Logger } from '../logger.ts'
import type { LocalStatus } from '../membership/local-status.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { NameOp } from '../store/name-index.ts'
import type { AbortOptions, Startable } from '@libp2p/interface'

export interface BucketAnnouncerComponents {
  store: LocalStore
  status: LocalStatus
  announce(bucket: string, options: AbortOptions): Promise<void>
  withdraw(bucket: string, options: AbortOptions): Promise<void>
  logger: Logger
}

export class BucketAnnouncer implements Startable {
  private readonly c: BucketAnnouncerComponents
  /** Buckets provided now, and the group they were provided for. */
  private readonly provided = new Set<string>()
  private group: string | null = null
  private controller?: AbortController
  private readonly inFlight = new Set<Promise<void>>()

  constructor (components: BucketAnnouncerComponents) {
    this.c = components
  }

  async start (): Promise<void> {
    if (this.controller != null) return
    this.controller = new AbortController()
    this.c.store.addEventListener('name:changed', this.onName)
    this.c.status.addEventListener('change', this.onStatus)
    this.onStatus()
  }

  async stop (): Promise<void> {
    if (this.controller == null) return
    this.c.store.removeEventListener('name:changed', this.onName)
    this.c.status.removeEventListener('change', this.onStatus)
    this.controller.abort()
    this.controller = undefined
    await Promise.allSettled([...this.inFlight])
  }

  /** A new group: withdraw what we provided for the old one, provide every bucket of the new one. */
  private readonly onStatus = (): void => {
    const group = this.c.status.group
    if (group === this.group) return
    this.group = group
    for (const bucket of [...this.provided]) this.set(bucket, false)
    if (group == null) return
    for (const row of this.c.store.names.buckets()) if (row.group === group && row.live) this.set(row.bucket, true)
  }

  private readonly onName = (evt: CustomEvent<NameOp>): void => {
    const op = evt.detail
    if (op.key !== BUCKET_RECORD_KEY || op.group !== this.group) return
    // The row is the bucket's newest operation (an older one arriving late changes nothing).
    const row = this.c.store.names.get(op.bucket, BUCKET_RECORD_KEY)
    this.set(op.bucket, row?.live === true)
  }

  private set (bucket: string, live: boolean): void {
    const signal = this.controller?.signal
    if (signal == null || live === this.provided.has(bucket)) return
    if (live) this.provided.add(bucket); else this.provided.delete(bucket)
    const work = (live ? this.c.announce(bucket, { signal }) : this.c.withdraw(bucket, { signal }))
      .catch(err => { if (!signal.aborted) this.c.logger.debug({ bucket, err: toError(err).message }, live ? 'could not provide a bucket key in the DHT' : 'could not withdraw a bucket key') })
      .finally(() => { this.inFlight.delete(work) })
    this.inFlight.add(work)
  }
}
