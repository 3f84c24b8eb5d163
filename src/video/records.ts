/**
 * The package and job records of a group (wire/media.ts), typed: read and
 * written through the group's read and write quorums (replica/namespace.ts),
 * or read from our own copy of the table when we are a member (the
 * scheduler's view: every member holds the whole table, and acts on what it
 * holds; what it missed reaches it by sync).
 */
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { JOB_PREFIX, JobRecordSchema, MAX_ERROR_CHARS, MEDIA_BUCKET, PACKAGE_PREFIX, PackageRecordSchema, jobKey, packageKey, parseJobKey } from '../wire/media.ts'
import { MAX_NAME_VALUE_BYTES } from '../wire/names.ts'
import type { JobRecord, PackageRecord } from '../wire/media.ts'
import type { Namespace } from '../replica/namespace.ts'
import type { NameRow } from '../store/name-index.ts'
import type { AbortOptions } from '@libp2p/interface'

export type GroupTables = Pick<Namespace, 'getIn' | 'putIn' | 'removeIn' | 'listIn'>
export interface LocalTable {
  get(bucket: string, key: string): NameRow | undefined
  listWithTombstones(bucket: string, after: string, limit: number): NameRow[]
}

/** A row as our own table holds it: its stamp tells a new write from an old one. */
export interface Held<T> { key: string, record: T, ts: number, origin: string }

const PAGE_ROWS = 500

/** An error text as a record keeps it (ffmpeg's reasons can be long). */
export function cutError (s: string): string {
  return s.length > MAX_ERROR_CHARS ? `${s.slice(0, MAX_ERROR_CHARS - 1)}…` : s
}

function decodePackage (value: Uint8Array): PackageRecord {
  return decodeMessage(PackageRecordSchema, value, MAX_NAME_VALUE_BYTES)
}

function decodeJob (value: Uint8Array): JobRecord {
  return decodeMessage(JobRecordSchema, value, MAX_NAME_VALUE_BYTES)
}

export class MediaRecords {
  private readonly tables: GroupTables
  private readonly local: LocalTable

  constructor (tables: GroupTables, local: LocalTable) {
    this.tables = tables
    this.local = local
  }

  async getPackage (group: string, source: string, options: AbortOptions = {}): Promise<PackageRecord | undefined> {
    const value = await this.tables.getIn(group, MEDIA_BUCKET, packageKey(source), options)
    return value != null ? decodePackage(value) : undefined
  }

  async putPackage (record: PackageRecord, options: AbortOptions = {}): Promise<void> {
    await this.tables.putIn(record.group, MEDIA_BUCKET, packageKey(record.source), encodeMessage(PackageRecordSchema, record), options)
  }

  async removePackage (group: string, source: string, options: AbortOptions = {}): Promise<void> {
    await this.tables.removeIn(group, MEDIA_BUCKET, packageKey(source), options)
  }

  async getJob (group: string, source: string, task: string, options: AbortOptions = {}): Promise<JobRecord | undefined> {
    const value = await this.tables.getIn(group, MEDIA_BUCKET, jobKey(source, task), options)
    return value != null ? decodeJob(value) : undefined
  }

  async putJob (group: string, source: string, record: JobRecord, options: AbortOptions = {}): Promise<void> {
    await this.tables.putIn(group, MEDIA_BUCKET, jobKey(source, record.task), encodeMessage(JobRecordSchema, record), options)
  }

  async removeJob (group: string, source: string, task: string, options: AbortOptions = {}): Promise<void> {
    await this.tables.removeIn(group, MEDIA_BUCKET, jobKey(source, task), options)
  }

  /** A package's jobs, by task, from the group's read quorum. */
  async jobs (group: string, source: string, options: AbortOptions = {}): Promise<Map<string, JobRecord>> {
    const prefix = `${jobKey(source, '')}`
    const out = new Map<string, JobRecord>()
    let after = prefix
    for (;;) {
      const page = await this.tables.listIn(group, MEDIA_BUCKET, after, PAGE_ROWS, { ...options, prefix })
      for (const row of page.rows) {
        const parsed = parseJobKey(row.key)
        if (parsed?.source === source) out.set(parsed.task, decodeJob(row.value))
      }
      if (page.next == null) return out
      after = page.next
    }
  }

  /** Every package of a group, from its read quorum. */
  async packages (group: string, options: AbortOptions = {}): Promise<PackageRecord[]> {
    const out: PackageRecord[] = []
    let after = PACKAGE_PREFIX
    for (;;) {
      const page = await this.tables.listIn(group, MEDIA_BUCKET, after, PAGE_ROWS, { ...options, prefix: PACKAGE_PREFIX })
      out.push(...page.rows.map(r => decodePackage(r.value)))
      if (page.next == null) return out
      after = page.next
    }
  }

  /** The live rows under `prefix` in our own table (a member's view of its group). */
  private * heldRows (prefix: string): Generator<NameRow> {
    let after = prefix
    for (;;) {
      const rows = this.local.listWithTombstones(MEDIA_BUCKET, after, PAGE_ROWS)
      for (const row of rows) {
        if (!row.key.startsWith(prefix)) return
        if (row.live && row.value != null) yield row
      }
      const last = rows.at(-1)
      if (rows.length < PAGE_ROWS || last == null) return
      after = last.key
    }
  }

  heldPackages (): Array<Held<PackageRecord>> {
    return [...this.heldRows(PACKAGE_PREFIX)].map(r => ({ key: r.key, record: decodePackage(r.value as Uint8Array), ts: r.ts, origin: r.origin }))
  }

  heldJobs (): Array<Held<JobRecord> & { source: string }> {
    return [...this.heldRows(JOB_PREFIX)].flatMap(r => {
      const parsed = parseJobKey(r.key)
      return parsed == null ? [] : [{ key: r.key, source: parsed.source, record: decodeJob(r.value as Uint8Array), ts: r.ts, origin: r.origin }]
    })
  }

  heldJob (source: string, task: string): Held<JobRecord> | undefined {
    const row = this.local.get(MEDIA_BUCKET, jobKey(source, task))
    return row?.live === true && row.value != null ? { key: row.key, record: decodeJob(row.value), ts: row.ts, origin: row.origin } : undefined
  }

  heldPackage (source: string): Held<PackageRecord> | undefined {
    const row = this.local.get(MEDIA_BUCKET, packageKey(source))
    return row?.live === true && row.value != null ? { key: row.key, record: decodePackage(row.value), ts: row.ts, origin: row.origin } : undefined
  }
}
