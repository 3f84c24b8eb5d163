/**
 * The S3 part of the fault simulation's workload: PUTs and DELETEs of a few
 * keys (so that keys are overwritten and deleted while faults happen), and
 * GETs, through random nodes' S3 listeners with the AWS SDK, every write
 * recorded in a history (./name-history.ts). After each window — healed and
 * converged — every key is read through every node and listed through a few:
 * all nodes must agree, and what they agree on must be a value the history
 * allows (an acknowledged PUT visible with its latest value, no deleted key
 * back, nothing never written).
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { KeyHistory } from './name-history.ts'
import type { KeyValue, Outcome } from './name-history.ts'
import type { SimCluster } from './cluster.ts'
import type { Rng } from './rng.ts'
import type { NodeConfig } from '../../src/node/config.ts'

export const SIM_S3_KEY = { accessKeyId: 'DSMSIMKEY00000000001', secretAccessKey: 'dsm-sim-secret-access-key-0000000000001' }
const BUCKET = 'sim'
/** Few keys: most writes overwrite or delete one that exists. */
const KEYS = 6
const MAX_OBJECT_BYTES = 64 * 1024
const DELETE_SHARE = 0.3
const S3_REQUEST_TIMEOUT_MS = 20_000
/** Nodes a check lists the bucket through. */
const LISTERS = 3
/** A key unreadable right after convergence is read again this often before it counts. */
const CHECK_READ_ATTEMPTS = 4
const CHECK_RETRY_BACKOFF_MS = 500

/** What every node of the simulation adds to its config: an S3 listener and the key the workload signs with. */
export function s3Config (): Partial<NodeConfig> {
  return { s3: { host: '127.0.0.1', port: 0 }, s3AccessKeyId: SIM_S3_KEY.accessKeyId, s3SecretAccessKey: SIM_S3_KEY.secretAccessKey }
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const short = (v: KeyValue): string => v?.slice(0, 12) ?? 'absent'

export class S3Workload {
  readonly history = new KeyHistory()
  /** Writes acknowledged, writes and reads by outcome (for the log). */
  readonly counts = { acked: 0, refused: 0, uncertain: 0, reads: 0 }
  /** Reads and checks that broke the rules. */
  violations = 0
  private readonly c: SimCluster
  private readonly rng: Rng
  private readonly log: (line: string) => void
  private ready = false

  constructor (c: SimCluster, rng: Rng, log: (line: string) => void) {
    this.c = c
    this.rng = rng
    this.log = log
  }

  private client (i: number): S3Client {
    return new S3Client({
      endpoint: this.c.node(i).s3?.url ?? '',
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: SIM_S3_KEY,
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ requestTimeout: S3_REQUEST_TIMEOUT_MS, connectionTimeout: S3_REQUEST_TIMEOUT_MS })
    })
  }

  private anyUp (): number {
    return this.rng.pick(this.c.upIndexes())
  }

  /** The bucket, made on the healthy cluster (a later window retries if this one could not). */
  async setup (): Promise<void> {
    if (this.ready) return
    try {
      await this.client(this.anyUp()).send(new CreateBucketCommand({ Bucket: BUCKET }))
      this.ready = true
    } catch (err) {
      if (err instanceof S3ServiceException && err.name === 'BucketAlreadyOwnedByYou') this.ready = true
      else this.log(`s3: could not create the bucket yet: ${(err as Error).name}: ${(err as Error).message}`)
    }
  }

  /** One write (PUT or DELETE of a random key) and one read, through random nodes; says how they went. */
  async step (): Promise<string> {
    if (!this.ready) return 's3 not ready'
    return `${await this.write()}; ${await this.read()}`
  }

  private async write (): Promise<string> {
    const key = `k${this.rng.int(KEYS)}`
    const remove = this.rng.next() < DELETE_SHARE
    const body = remove ? undefined : this.rng.bytes(1 + this.rng.int(MAX_OBJECT_BYTES))
    const value = body != null ? sha(body) : undefined
    const via = this.anyUp()
    const askedAt = this.history.now()
    let outcome: Outcome = 'acked'
    let why = ''
    try {
      await this.client(via).send(remove ? new DeleteObjectCommand({ Bucket: BUCKET, Key: key }) : new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }))
    } catch (err) {
      outcome = outcomeOf(err)
      why = ` ${(err as Error).name}`
    }
    this.history.record(key, value, askedAt, this.history.now(), outcome)
    this.counts[outcome]++
    return `s3 ${remove ? 'delete' : 'put'} ${key} via ${via}: ${outcome}${why}`
  }

  /**
   * A read during faults may fail (503: no read quorum on this side); what it
   * returns must be a value the history allows at that time — never a stale
   * one, never "absent" for a key whose PUT was acknowledged.
   */
  private async read (): Promise<string> {
    const key = `k${this.rng.int(KEYS)}`
    const via = this.anyUp()
    this.counts.reads++
    const askedAt = this.history.now()
    const seen = await this.get(via, key).catch((err: Error) => err)
    const answeredAt = this.history.now()
    if (seen instanceof Error) return `s3 get ${key}: ${seen.name}`
    const wrong = this.history.check(key, seen, askedAt, answeredAt)
    if (wrong != null) {
      this.violations++
      this.log(`S3 VIOLATION: node ${via} during faults: ${wrong}`)
    }
    return `s3 get ${key}: ${short(seen)}`
  }

  /** The value a node reads for `key` (undefined: NoSuchKey). */
  private async get (i: number, key: string): Promise<KeyValue> {
    try {
      const res = await this.client(i).send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
      return sha(await res.Body?.transformToByteArray() ?? new Uint8Array())
    } catch (err) {
      if (err instanceof S3ServiceException && err.name === 'NoSuchKey') return undefined
      throw err
    }
  }

  /** A node's view, compactly: its own group and state, then each group's members as index + state letter. */
  private viewOf (i: number): string {
    const node = this.c.node(i)
    const index = (peer: string): string => { const n = this.c.upIndexes().find(j => this.c.peerId(j) === peer); return n != null ? String(n) : peer.slice(-4) }
    const groups = node.membership.view.groups().map(g => `${g.name}: ${g.members.map(m => `${index(m.peerId)}${m.state[0] ?? '?'}${m.spare ? 's' : ''}`).join(' ')}`)
    return `self ${node.status.group ?? '-'} ${node.status.state}; ${groups.join(' | ')}`
  }

  /** The value a node reads for `key`, retried a few times (the cluster just converged), or the last error. */
  private async settledGet (i: number, key: string): Promise<KeyValue | Error> {
    let last: Error = new Error('not read')
    for (let attempt = 0; attempt < CHECK_READ_ATTEMPTS; attempt++) {
      if (attempt > 0) await sleep(CHECK_RETRY_BACKOFF_MS * attempt)
      try {
        return await this.get(i, key)
      } catch (err) {
        last = err as Error
      }
    }
    return last
  }

  /** On the healed, converged cluster: every node reads the same allowed value of every key; listings say the same. */
  async check (): Promise<void> {
    if (!this.ready) return
    const up = this.c.upIndexes()
    const agreed = new Map<string, KeyValue>()
    for (const key of this.history.keys()) {
      const seen = await Promise.all(up.map(async i => this.settledGet(i, key)))
      const shown = seen.map(v => v instanceof Error ? `error ${v.name}: ${v.message}` : short(v))
      if (new Set(shown).size > 1 || seen[0] instanceof Error) {
        this.violations++
        this.log(`S3 VIOLATION: ${key} read differently or not at all: ${up.map((i, n) => `${i}=${shown[n] ?? ''}`).join(' ')}`)
        // What the nodes that could not read saw of the cluster (their own state first), to tell why.
        for (const [n, i] of up.entries()) if (seen[n] instanceof Error) this.log(`  node ${i} sees: ${this.viewOf(i)}`)
        continue
      }
      const value = seen[0] as KeyValue
      agreed.set(key, value)
      const wrong = this.history.check(key, value)
      if (wrong != null) { this.violations++; this.log(`S3 VIOLATION: ${wrong}`) }
    }
    for (const i of Array.from({ length: LISTERS }, () => this.rng.pick(up))) {
      const listed = new Set((await this.client(i).send(new ListObjectsV2Command({ Bucket: BUCKET }))).Contents?.map(o => o.Key ?? '') ?? [])
      for (const [key, value] of agreed) {
        if (listed.has(key) !== (value != null)) { this.violations++; this.log(`S3 VIOLATION: node ${i} lists ${key} ${listed.has(key) ? 'present' : 'absent'}, every node reads ${short(value)}`) }
      }
    }
    this.log(`s3 check: ${this.history.keys().length} keys read through ${up.length} nodes, listed through ${LISTERS}; writes acked ${this.counts.acked}, refused ${this.counts.refused}, uncertain ${this.counts.uncertain}; violations ${this.violations}`)
  }
}

/**
 * What a failed write may have done. S3's 4xx refusals wrote nothing; a 503
 * (a quorum out of reach after the member applied it), a 500 or a broken or
 * timed-out request may have written it.
 */
function outcomeOf (err: unknown): Outcome {
  const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined
  return status != null && status >= 400 && status < 500 ? 'refused' : 'uncertain'
}
