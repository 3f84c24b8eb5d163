/**
 * The bytes of S3 values that are gone are reclaimed: the file of an
 * overwritten or deleted object, and the part files of a completed or aborted
 * multipart upload, are deleted from the cluster (after `reclaimDelayMs`),
 * while every value still named keeps its bytes — two keys with the same
 * bytes, a copy whose source is deleted, an object whose metadata was
 * replaced in place.
 */
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  GetObjectCommand, PutObjectCommand, UploadPartCommand
} from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { decodeMessage } from '../../src/wire/codec.ts'
import { MAX_NAME_VALUE_BYTES, PartRecordSchema } from '../../src/wire/names.ts'
import { UPLOAD_KEY_PREFIX } from '../../src/replica/upload-janitor.ts'
import { createSimCluster } from '../sim/cluster.ts'
import { s3Client } from '../helpers/s3.ts'
import { randomBytes, sha256hex } from '../helpers/data.ts'
import type { S3Client } from '@aws-sdk/client-s3'
import type { SimCluster } from '../sim/cluster.ts'

const KEY = { accessKeyId: 'DSMTESTKEY0000000004', secretAccessKey: 'dsm-test-secret-access-key-reclaim-00001' }
const MiB = 1024 * 1024
const BUCKET = 'reclaimed'

describe('reclaiming the bytes of S3 values that are gone', () => {
  let c: SimCluster
  const client = (i: number): S3Client => s3Client(c.node(i).s3?.url ?? '', KEY)
  const fileOf = async (key: string): Promise<string> => {
    const record = await c.node(0).replica.names.getObject(BUCKET, key)
    if (record == null) throw new Error(`no object ${key}`)
    return record.file
  }
  /** Whether a file reads through `i` (false once deleted everywhere). */
  const exists = async (i: number, id: string): Promise<boolean> => c.node(i).replica.open(id).then(() => true, (err: Error) => {
    if (err.name === 'FileNotFoundError') return false
    throw err
  })
  const body = async (i: number, key: string): Promise<string> => sha256hex(await (await client(i).send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body?.transformToByteArray() ?? new Uint8Array())

  beforeAll(async () => {
    c = await createSimCluster({ nodes: 4, groupSize: 2, sequential: true, joinSettleMs: 300, configure: () => ({ s3: { host: '127.0.0.1', port: 0 }, s3AccessKeyId: KEY.accessKeyId, s3SecretAccessKey: KEY.secretAccessKey, reclaimDelayMs: 200 }) })
    await c.ready()
    await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.groups().length === 2), { message: 'two groups everywhere' })
    await client(0).send(new CreateBucketCommand({ Bucket: BUCKET }))
  }, 120_000)
  afterAll(async () => { await c.close() })

  it('overwritten, deleted and copied objects and finished multipart uploads: freed files go, named ones stay byte-identical', async () => {
    const [a, b, same] = [randomBytes(300_000, 1), randomBytes(200_000, 2), randomBytes(100_000, 3)]
    // Overwritten: the first file is freed.
    await client(1).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'over', Body: a }))
    const overFirst = await fileOf('over')
    await client(2).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'over', Body: b }))
    // Deleted: its file is freed.
    await client(3).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'gone', Body: a }))
    const goneFile = await fileOf('gone')
    await client(0).send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'gone' }))
    // The same bytes under two keys (with one last segment): two files; deleting one key leaves the other whole.
    await client(0).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'x/clip.bin', Body: same }))
    await client(1).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'y/clip.bin', Body: same }))
    const [xFile, yFile] = [await fileOf('x/clip.bin'), await fileOf('y/clip.bin')]
    expect(xFile).not.toBe(yFile)
    await client(2).send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'x/clip.bin' }))
    // A copy has a file of its own: deleting the source leaves it whole. A copy onto itself keeps the file.
    await client(3).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'source', Body: a }))
    const sourceFile = await fileOf('source')
    await client(0).send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'copy', CopySource: `${BUCKET}/source` }))
    await client(1).send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'source' }))
    await client(2).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'meta', Body: b }))
    const metaFile = await fileOf('meta')
    await client(3).send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'meta', CopySource: `${BUCKET}/meta`, MetadataDirective: 'REPLACE', Metadata: { label: 'new' } }))
    expect(await fileOf('meta')).toBe(metaFile)
    // Multipart: completed (parts freed), re-uploaded part (the first freed), aborted (parts freed).
    const partFiles = async (uploadId: string): Promise<string[]> => (await c.node(0).replica.names.listRaw(BUCKET, '', 1000, { prefix: `${UPLOAD_KEY_PREFIX}${uploadId}/` }))
      .rows.map(r => decodeMessage(PartRecordSchema, r.value, MAX_NAME_VALUE_BYTES).file)
    const big = randomBytes(5 * MiB + 3, 4)
    const done = await client(0).send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'multi' }))
    await client(1).send(new UploadPartCommand({ Bucket: BUCKET, Key: 'multi', UploadId: done.UploadId, PartNumber: 1, Body: randomBytes(5 * MiB, 9) }))
    const replacedPart = await partFiles(done.UploadId ?? '')
    const p1 = await client(1).send(new UploadPartCommand({ Bucket: BUCKET, Key: 'multi', UploadId: done.UploadId, PartNumber: 1, Body: big.subarray(0, 5 * MiB) }))
    const p2 = await client(2).send(new UploadPartCommand({ Bucket: BUCKET, Key: 'multi', UploadId: done.UploadId, PartNumber: 2, Body: big.subarray(5 * MiB) }))
    const completedParts = await partFiles(done.UploadId ?? '')
    await client(3).send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'multi', UploadId: done.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] } }))
    const aborted = await client(0).send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'never' }))
    await client(1).send(new UploadPartCommand({ Bucket: BUCKET, Key: 'never', UploadId: aborted.UploadId, PartNumber: 1, Body: randomBytes(1000, 5) }))
    const abortedParts = await partFiles(aborted.UploadId ?? '')
    await client(2).send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'never', UploadId: aborted.UploadId }))

    const freed = [overFirst, goneFile, xFile, sourceFile, ...replacedPart, ...completedParts, ...abortedParts]
    expect(new Set(freed).size, JSON.stringify({ overFirst, goneFile, xFile, sourceFile, replacedPart, completedParts, abortedParts })).toBe(8)
    await vi.waitFor(async () => {
      for (const id of freed) for (const i of c.upIndexes()) expect(await exists(i, id), `${id} through node ${i}`).toBe(false)
    }, { timeout: 90_000, interval: 500 })
    // Everything still named reads back byte-identical from every node, and its file is there.
    const named: Array<[string, Uint8Array]> = [['over', b], ['y/clip.bin', same], ['copy', a], ['meta', b], ['multi', big]]
    for (const i of c.upIndexes()) for (const [key, bytes] of named) expect(await body(i, key), `${key} through node ${i}`).toBe(sha256hex(bytes))
    for (const key of ['over', 'y/clip.bin', 'copy', 'meta', 'multi']) expect(await exists(3, await fileOf(key)), key).toBe(true)
    // Nothing is left to reclaim.
    await vi.waitFor(() => { expect(c.upIndexes().map(i => c.node(i).store.reclaims.size)).toEqual([0, 0, 0, 0]) }, { timeout: 30_000, interval: 200 })
  }, 180_000)
})
