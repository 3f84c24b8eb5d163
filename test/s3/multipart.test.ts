/**
 * Multipart uploads with the AWS SDK against real nodes: create, parts
 * (uploaded through different nodes, one copied from another object),
 * ListParts, ListMultipartUploads, complete (S3's md5-of-md5s ETag, one dsm
 * file), abort; the errors clients rely on (NoSuchUpload, InvalidPart,
 * InvalidPartOrder, EntityTooSmall); and a 100 MiB upload through one node
 * read back byte-identical through a node of the other group.
 */
import { createHash } from 'node:crypto'
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand,
  HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand, S3Client, UploadPartCommand, UploadPartCopyCommand
} from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimCluster } from '../sim/cluster.ts'
import { s3Client, s3Error } from '../helpers/s3.ts'
import { randomBytes, sha256hex } from '../helpers/data.ts'
import type { SimCluster } from '../sim/cluster.ts'

const KEY = { accessKeyId: 'DSMTESTKEY0000000002', secretAccessKey: 'dsm-test-secret-access-key-multipart-0001' }
const MiB = 1024 * 1024

function client (c: SimCluster, i: number): S3Client {
  return s3Client(c.node(i).s3?.url ?? '', KEY)
}

const md5 = (b: Uint8Array): Buffer => createHash('md5').update(b).digest()

describe('unfinished multipart uploads', () => {
  it('are dropped with their parts, on every member, once older than the configured expiry', async () => {
    const c = await createSimCluster({ nodes: 2, groupSize: 2, configure: () => ({ s3: { host: '127.0.0.1', port: 0 }, s3AccessKeyId: KEY.accessKeyId, s3SecretAccessKey: KEY.secretAccessKey, s3MultipartExpiryMs: 3_000 }) })
    try {
      await c.ready()
      const s3 = client(c, 1)
      await s3.send(new CreateBucketCommand({ Bucket: 'stale' }))
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'stale', Key: 'left.bin' }))
      await s3.send(new UploadPartCommand({ Bucket: 'stale', Key: 'left.bin', UploadId, PartNumber: 1, Body: randomBytes(1000, 8) }))
      expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'stale' }))).Uploads).toHaveLength(1)
      const dropped = (): number => c.upIndexes().reduce((a, i) => a + c.node(i).replica.janitor.dropped, 0)
      await c.waitFor(() => dropped() === 1, { timeoutMs: 30_000, message: 'the janitor drops the upload' })
      expect((await client(c, 0).send(new ListMultipartUploadsCommand({ Bucket: 'stale' }))).Uploads ?? []).toEqual([])
      expect(await s3Error(s3.send(new ListPartsCommand({ Bucket: 'stale', Key: 'left.bin', UploadId })))).toMatchObject({ name: 'NoSuchUpload' })
      // Its rows are gone from every member (the part's too), as tombstones.
      for (const i of c.upIndexes()) expect(c.node(i).store.names.list('stale', '', 10)).toEqual([])
    } finally {
      await c.close()
    }
  })
})

describe('S3 multipart uploads', () => {
  let c: SimCluster
  beforeAll(async () => {
    c = await createSimCluster({ nodes: 4, groupSize: 2, sequential: true, joinSettleMs: 300, configure: () => ({ s3: { host: '127.0.0.1', port: 0 }, s3AccessKeyId: KEY.accessKeyId, s3SecretAccessKey: KEY.secretAccessKey }) })
    await c.ready()
    await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.groups().length === 2), { message: 'two groups everywhere' })
    await client(c, 0).send(new CreateBucketCommand({ Bucket: 'mpu' }))
  }, 120_000)
  afterAll(async () => { await c.close() })

  it('parts through different nodes (one copied from an object) complete into one object with S3\'s ETag; the upload then is gone', async () => {
    const a = randomBytes(5 * MiB, 1)
    const b = randomBytes(5 * MiB + 123, 2)
    const tail = randomBytes(700_000, 3)
    await client(c, 3).send(new PutObjectCommand({ Bucket: 'mpu', Key: 'source', Body: tail }))
    const { UploadId } = await client(c, 0).send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'movie.mp4', ContentType: 'video/mp4', Metadata: { title: 'Movie' } }))
    const id = UploadId ?? ''
    const p1 = await client(c, 1).send(new UploadPartCommand({ Bucket: 'mpu', Key: 'movie.mp4', UploadId: id, PartNumber: 1, Body: a }))
    const p2 = await client(c, 2).send(new UploadPartCommand({ Bucket: 'mpu', Key: 'movie.mp4', UploadId: id, PartNumber: 2, Body: b }))
    const p3 = await client(c, 3).send(new UploadPartCopyCommand({ Bucket: 'mpu', Key: 'movie.mp4', UploadId: id, PartNumber: 3, CopySource: 'mpu/source', CopySourceRange: `bytes=0-${tail.byteLength - 1}` }))
    expect(p1.ETag).toBe(`"${md5(a).toString('hex')}"`)
    const parts = await client(c, 0).send(new ListPartsCommand({ Bucket: 'mpu', Key: 'movie.mp4', UploadId: id }))
    expect(parts.Parts?.map(p => [p.PartNumber, p.Size])).toEqual([[1, a.byteLength], [2, b.byteLength], [3, tail.byteLength]])
    expect((await client(c, 2).send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }))).Uploads?.map(u => [u.Key, u.UploadId])).toEqual([['movie.mp4', id]])
    // Not an object until completed.
    expect((await client(c, 1).send(new ListObjectsV2Command({ Bucket: 'mpu' }))).Contents?.map(o => o.Key)).toEqual(['source'])
    const done = await client(c, 2).send(new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key: 'movie.mp4', UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }, { PartNumber: 3, ETag: p3.CopyPartResult?.ETag }] } }))
    const etag = `"${createHash('md5').update(Buffer.concat([md5(a), md5(b), md5(tail)])).digest('hex')}-3"`
    expect(done.ETag).toBe(etag)
    const whole = Buffer.concat([a, b, tail])
    for (const i of c.upIndexes()) {
      const got = await client(c, i).send(new GetObjectCommand({ Bucket: 'mpu', Key: 'movie.mp4' }))
      expect(got).toMatchObject({ ETag: etag, ContentType: 'video/mp4', Metadata: { title: 'Movie' }, ContentLength: whole.byteLength })
      expect(sha256hex(await got.Body?.transformToByteArray() ?? new Uint8Array())).toBe(sha256hex(whole))
    }
    expect(await s3Error(client(c, 1).send(new ListPartsCommand({ Bucket: 'mpu', Key: 'movie.mp4', UploadId: id })))).toMatchObject({ name: 'NoSuchUpload', status: 404 })
    expect((await client(c, 2).send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }))).Uploads ?? []).toEqual([])
  })

  it('refuses a wrong part list (InvalidPart, InvalidPartOrder, EntityTooSmall) and an unknown upload; an aborted upload is gone', async () => {
    const s3 = client(c, 1)
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'bad' }))
    const id = UploadId ?? ''
    const small = await s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'bad', UploadId: id, PartNumber: 1, Body: randomBytes(1000, 4) }))
    const last = await s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'bad', UploadId: id, PartNumber: 2, Body: randomBytes(1000, 5) }))
    const complete = async (parts: Array<{ PartNumber: number, ETag?: string }>): Promise<unknown> => s3.send(new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key: 'bad', UploadId: id, MultipartUpload: { Parts: parts } }))
    expect(await s3Error(complete([{ PartNumber: 1, ETag: small.ETag }, { PartNumber: 2, ETag: last.ETag }]))).toMatchObject({ name: 'EntityTooSmall', status: 400 })
    expect(await s3Error(complete([{ PartNumber: 2, ETag: last.ETag }, { PartNumber: 1, ETag: small.ETag }]))).toMatchObject({ name: 'InvalidPartOrder', status: 400 })
    expect(await s3Error(complete([{ PartNumber: 1, ETag: '"00000000000000000000000000000000"' }]))).toMatchObject({ name: 'InvalidPart', status: 400 })
    expect(await s3Error(s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'bad', UploadId: 'f'.repeat(32), PartNumber: 1, Body: 'x' })))).toMatchObject({ name: 'NoSuchUpload', status: 404 })
    await client(c, 3).send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'bad', UploadId: id }))
    expect(await s3Error(s3.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'bad', UploadId: id })))).toMatchObject({ name: 'NoSuchUpload', status: 404 })
    expect(await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'bad' })))).toMatchObject({ status: 404 })
  })

  it('100 MiB in 5 MiB parts through one node reads back byte-identical through a node of the other group', async () => {
    const data = randomBytes(100 * MiB, 77)
    const up = client(c, 0)
    const { UploadId } = await up.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'big.bin' }))
    const parts: Array<{ PartNumber: number, ETag?: string }> = []
    for (let n = 1, at = 0; at < data.byteLength; n++, at += 5 * MiB) {
      const res = await up.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'big.bin', UploadId, PartNumber: n, Body: data.subarray(at, at + 5 * MiB) }))
      parts.push({ PartNumber: n, ETag: res.ETag })
    }
    await up.send(new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key: 'big.bin', UploadId, MultipartUpload: { Parts: parts } }))
    const group0 = c.node(0).status.group
    const other = c.upIndexes().find(i => c.node(i).status.group !== group0) as number
    const got = await client(c, other).send(new GetObjectCommand({ Bucket: 'mpu', Key: 'big.bin' }))
    expect(got.ETag).toMatch(/-20"$/)
    expect(sha256hex(await got.Body?.transformToByteArray() ?? new Uint8Array())).toBe(sha256hex(data))
  }, 180_000)
})
