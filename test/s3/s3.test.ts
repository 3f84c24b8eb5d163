/**
 * S3 on every node, driven by the real AWS SDK (@aws-sdk/client-s3) against
 * real nodes: buckets, objects (Content-MD5, ETag, Range, conditionals,
 * response-* overrides, metadata), listings (v2 and v1, prefixes,
 * delimiters, pagination), read-after-write and list-after-write through
 * every node, a presigned GET, and what is refused: wrong keys and
 * signatures, expired and over-long presigned URLs, anonymous writes.
 */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import {
  CopyObjectCommand, CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, DeleteObjectCommand, GetBucketLocationCommand, GetObjectCommand, HeadBucketCommand,
  HeadObjectCommand, ListBucketsCommand, ListObjectsCommand, ListObjectsV2Command, PutObjectCommand, S3Client, paginateListObjectsV2
} from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimCluster } from '../sim/cluster.ts'
import { s3Client, s3Error } from '../helpers/s3.ts'
import { randomBytes, sha256hex } from '../helpers/data.ts'
import type { SimCluster } from '../sim/cluster.ts'

const KEY = { accessKeyId: 'DSMTESTKEY0000000001', secretAccessKey: 'dsm-test-secret-access-key-0123456789abcd' }

function client (c: SimCluster, i: number, credentials = KEY): S3Client {
  return s3Client(c.node(i).s3?.url ?? '', credentials)
}

describe('S3 with the AWS SDK', () => {
  let c: SimCluster
  beforeAll(async () => {
    c = await createSimCluster({ nodes: 4, groupSize: 2, sequential: true, joinSettleMs: 300, configure: () => ({ s3: { host: '127.0.0.1', port: 0 }, s3AccessKeyId: KEY.accessKeyId, s3SecretAccessKey: KEY.secretAccessKey }) })
    await c.ready()
    await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.groups().length === 2), { message: 'two groups everywhere' })
  }, 120_000)
  afterAll(async () => { await c.close() })

  it('buckets: create, head, location, list, delete (empty only); errors are S3\'s', async () => {
    const s3 = client(c, 0)
    await s3.send(new CreateBucketCommand({ Bucket: 'alpha' }))
    expect(await s3Error(s3.send(new CreateBucketCommand({ Bucket: 'alpha' })))).toMatchObject({ name: 'BucketAlreadyOwnedByYou', status: 409 })
    await client(c, 3).send(new HeadBucketCommand({ Bucket: 'alpha' }))
    expect((await client(c, 2).send(new GetBucketLocationCommand({ Bucket: 'alpha' }))).LocationConstraint ?? '').toBe('')
    expect((await client(c, 1).send(new ListBucketsCommand({}))).Buckets?.map(b => b.Name)).toContain('alpha')
    expect(await s3Error(s3.send(new HeadBucketCommand({ Bucket: 'nope-nope' })))).toMatchObject({ status: 404 })
    expect(await s3Error(s3.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })))).toMatchObject({ name: 'InvalidBucketName', status: 400 })
    await s3.send(new PutObjectCommand({ Bucket: 'alpha', Key: 'x', Body: 'x' }))
    expect(await s3Error(s3.send(new DeleteBucketCommand({ Bucket: 'alpha' })))).toMatchObject({ name: 'BucketNotEmpty', status: 409 })
    await s3.send(new DeleteObjectCommand({ Bucket: 'alpha', Key: 'x' }))
    await client(c, 2).send(new DeleteBucketCommand({ Bucket: 'alpha' }))
    expect(await s3Error(client(c, 1).send(new HeadBucketCommand({ Bucket: 'alpha' })))).toMatchObject({ status: 404 })
  })

  it('objects: PUT through one node is read back byte-identical through every node, with its ETag, metadata, ranges and conditions', async () => {
    await client(c, 0).send(new CreateBucketCommand({ Bucket: 'media' }))
    const data = randomBytes(3 * 1024 * 1024 + 17, 21)
    const md5 = createHash('md5').update(data).digest()
    const put = await client(c, 1).send(new PutObjectCommand({ Bucket: 'media', Key: 'videos/clip one.mp4', Body: data, ContentType: 'video/mp4', ContentMD5: md5.toString('base64'), Metadata: { title: 'Clip One' } }))
    expect(put.ETag).toBe(`"${md5.toString('hex')}"`)
    for (const i of c.upIndexes()) {
      const got = await client(c, i).send(new GetObjectCommand({ Bucket: 'media', Key: 'videos/clip one.mp4' }))
      expect(sha256hex(await got.Body?.transformToByteArray() ?? new Uint8Array())).toBe(sha256hex(data))
      expect(got).toMatchObject({ ETag: put.ETag, ContentType: 'video/mp4', ContentLength: data.byteLength, Metadata: { title: 'Clip One' } })
    }
    const part = await client(c, 2).send(new GetObjectCommand({ Bucket: 'media', Key: 'videos/clip one.mp4', Range: 'bytes=1000000-1065535' }))
    expect(part.ContentRange).toBe(`bytes 1000000-1065535/${data.byteLength}`)
    expect(Buffer.from(await part.Body?.transformToByteArray() ?? [])).toEqual(Buffer.from(data.subarray(1_000_000, 1_065_536)))
    const head = await client(c, 3).send(new HeadObjectCommand({ Bucket: 'media', Key: 'videos/clip one.mp4' }))
    expect(head).toMatchObject({ ETag: put.ETag, ContentLength: data.byteLength })
    expect(await s3Error(client(c, 3).send(new GetObjectCommand({ Bucket: 'media', Key: 'videos/clip one.mp4', IfMatch: '"0000"' })))).toMatchObject({ name: 'PreconditionFailed', status: 412 })
    expect(await s3Error(client(c, 3).send(new GetObjectCommand({ Bucket: 'media', Key: 'videos/clip one.mp4', IfNoneMatch: put.ETag })))).toMatchObject({ status: 304 })
    expect(await s3Error(client(c, 0).send(new GetObjectCommand({ Bucket: 'media', Key: 'videos/clip one.mp4', Range: `bytes=${data.byteLength + 5}-` })))).toMatchObject({ name: 'InvalidRange', status: 416 })
    const over = await client(c, 0).send(new GetObjectCommand({ Bucket: 'media', Key: 'videos/clip one.mp4', ResponseContentType: 'application/x-test', ResponseContentDisposition: 'attachment; filename="a.mp4"' }))
    expect(over).toMatchObject({ ContentType: 'application/x-test', ContentDisposition: 'attachment; filename="a.mp4"' })
    await over.Body?.transformToByteArray()
    expect(await s3Error(client(c, 0).send(new PutObjectCommand({ Bucket: 'media', Key: 'bad-md5', Body: 'abc', ContentMD5: createHash('md5').update('abd').digest('base64') })))).toMatchObject({ name: 'BadDigest', status: 400 })
    expect(await s3Error(client(c, 1).send(new GetObjectCommand({ Bucket: 'media', Key: 'bad-md5' })))).toMatchObject({ name: 'NoSuchKey', status: 404 })
    await client(c, 2).send(new DeleteObjectCommand({ Bucket: 'media', Key: 'videos/clip one.mp4' }))
    for (const i of c.upIndexes()) expect(await s3Error(client(c, i).send(new HeadObjectCommand({ Bucket: 'media', Key: 'videos/clip one.mp4' })))).toMatchObject({ status: 404 })
  })

  it('checksums the SDK sends by default and on request — headers and aws-chunked trailers — are verified and returned', async () => {
    const s3 = client(c, 1)
    await s3.send(new CreateBucketCommand({ Bucket: 'sums' }))
    const data = randomBytes(300_000, 9)
    // A stream of unknown length: the SDK sends an aws-chunked body with a trailing checksum.
    for (const algorithm of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA256', 'SHA1'] as const) {
      const key = `streamed-${algorithm}`
      await s3.send(new PutObjectCommand({ Bucket: 'sums', Key: key, Body: Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), ContentLength: data.byteLength, ChecksumAlgorithm: algorithm }))
      const got = await client(c, 3).send(new GetObjectCommand({ Bucket: 'sums', Key: key, ChecksumMode: 'ENABLED' }))
      expect(sha256hex(await got.Body?.transformToByteArray() ?? new Uint8Array())).toBe(sha256hex(data))
      expect(got[`Checksum${algorithm}`], algorithm).toBeDefined()
    }
    // A checksum that does not match the body: refused, nothing stored.
    expect(await s3Error(s3.send(new PutObjectCommand({ Bucket: 'sums', Key: 'lie', Body: data, ChecksumCRC32: 'AAAAAA==' })))).toMatchObject({ name: 'BadDigest', status: 400 })
    expect(await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'sums', Key: 'lie' })))).toMatchObject({ status: 404 })
  })

  it('DeleteObjects removes many keys at once (up to 1,000); CopyObject copies with the source\'s metadata or the request\'s', async () => {
    const s3 = client(c, 2)
    await s3.send(new CreateBucketCommand({ Bucket: 'batch' }))
    for (const k of ['one', 'two', 'three']) await s3.send(new PutObjectCommand({ Bucket: 'batch', Key: k, Body: k, Metadata: { origin: k } }))
    const del = await client(c, 0).send(new DeleteObjectsCommand({ Bucket: 'batch', Delete: { Objects: [{ Key: 'one' }, { Key: 'two' }, { Key: 'never-was' }] } }))
    expect(del.Deleted?.map(d => d.Key).sort()).toEqual(['never-was', 'one', 'two'])
    expect(del.Errors ?? []).toEqual([])
    for (const i of c.upIndexes()) expect((await client(c, i).send(new ListObjectsV2Command({ Bucket: 'batch' }))).Contents?.map(o => o.Key)).toEqual(['three'])
    const tooMany = Array.from({ length: 1001 }, (_, n) => ({ Key: `k${n}` }))
    expect(await s3Error(s3.send(new DeleteObjectsCommand({ Bucket: 'batch', Delete: { Objects: tooMany } })))).toMatchObject({ name: 'MalformedXML', status: 400 })
    const copied = await client(c, 3).send(new CopyObjectCommand({ Bucket: 'batch', Key: 'copy', CopySource: 'batch/three' }))
    const source = await s3.send(new HeadObjectCommand({ Bucket: 'batch', Key: 'three' }))
    expect(copied.CopyObjectResult?.ETag).toBe(source.ETag)
    expect((await client(c, 1).send(new HeadObjectCommand({ Bucket: 'batch', Key: 'copy' }))).Metadata).toEqual({ origin: 'three' })
    await client(c, 1).send(new CopyObjectCommand({ Bucket: 'batch', Key: 'copy', CopySource: '/batch/three', MetadataDirective: 'REPLACE', Metadata: { origin: 'replaced' }, ContentType: 'text/plain' }))
    const replaced = await client(c, 0).send(new GetObjectCommand({ Bucket: 'batch', Key: 'copy' }))
    expect(replaced).toMatchObject({ Metadata: { origin: 'replaced' }, ContentType: 'text/plain' })
    expect(await replaced.Body?.transformToString()).toBe('three')
    expect(await s3Error(s3.send(new CopyObjectCommand({ Bucket: 'batch', Key: 'three', CopySource: 'batch/three' })))).toMatchObject({ name: 'InvalidRequest', status: 400 })
    expect(await s3Error(s3.send(new CopyObjectCommand({ Bucket: 'batch', Key: 'x', CopySource: 'batch/none' })))).toMatchObject({ name: 'NoSuchKey', status: 404 })
  })

  it('listings: v2 and v1 with prefixes, delimiters, start-after and pagination, from every node right after the writes', async () => {
    await client(c, 3).send(new CreateBucketCommand({ Bucket: 'listing' }))
    // In raw UTF-8 byte order ('z' is 0x7a, 'é' starts with 0xc3).
    const keys = ['a/1', 'a/2', 'a/b/3', 'b/1', 'c', 'z z', 'é/1']
    for (const [n, k] of keys.entries()) await client(c, n % 4).send(new PutObjectCommand({ Bucket: 'listing', Key: k, Body: k }))
    for (const i of c.upIndexes()) {
      const all = await client(c, i).send(new ListObjectsV2Command({ Bucket: 'listing' }))
      expect(all.Contents?.map(o => o.Key)).toEqual(keys)
      expect(all.KeyCount).toBe(keys.length)
    }
    const top = await client(c, 0).send(new ListObjectsV2Command({ Bucket: 'listing', Delimiter: '/' }))
    expect(top.CommonPrefixes?.map(p => p.Prefix)).toEqual(['a/', 'b/', 'é/'])
    expect(top.Contents?.map(o => o.Key)).toEqual(['c', 'z z'])
    const inA = await client(c, 1).send(new ListObjectsV2Command({ Bucket: 'listing', Prefix: 'a/', Delimiter: '/' }))
    expect(inA.Contents?.map(o => o.Key)).toEqual(['a/1', 'a/2'])
    expect(inA.CommonPrefixes?.map(p => p.Prefix)).toEqual(['a/b/'])
    // Pages of 2: every key once, in order.
    const seen: string[] = []
    let token: string | undefined
    do {
      const page = await client(c, 2).send(new ListObjectsV2Command({ Bucket: 'listing', MaxKeys: 2, ...(token != null ? { ContinuationToken: token } : {}) }))
      seen.push(...(page.Contents ?? []).map(o => o.Key ?? ''))
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token != null)
    expect(seen).toEqual(keys)
    expect((await client(c, 3).send(new ListObjectsV2Command({ Bucket: 'listing', StartAfter: 'b/1' }))).Contents?.map(o => o.Key)).toEqual(['c', 'z z', 'é/1'])
    const v1 = await client(c, 0).send(new ListObjectsCommand({ Bucket: 'listing', Marker: 'a/2', MaxKeys: 3 }))
    expect(v1.Contents?.map(o => o.Key)).toEqual(['a/b/3', 'b/1', 'c'])
    expect(v1.IsTruncated).toBe(true)
    const res = await fetch(`${c.node(0).s3?.url ?? ''}/listing?list-type=2&max-keys=abc`)
    expect(res.status).toBe(403) // unsigned: refused before anything else
  })

  it('2,500 keys: pages of a listing (v2 with continuation tokens, v1 with markers) give every key once, in order, with prefixes and delimiters, through every node', async () => {
    await client(c, 1).send(new CreateBucketCommand({ Bucket: 'many' }))
    // 2,500 keys: 800 under each of three "folders", 100 at the top; written 16 at a time through all nodes.
    const keys = [...['a/', 'b/', 'c/'].flatMap(p => Array.from({ length: 800 }, (_, i) => `${p}${String(i).padStart(4, '0')}`)), ...Array.from({ length: 100 }, (_, i) => `top-${String(i).padStart(3, '0')}`)]
    expect(keys).toHaveLength(2500)
    // One client per node, as an application keeps (each holds its keep-alive connections).
    const clients = c.upIndexes().map(i => client(c, i))
    let next = 0
    await Promise.all(Array.from({ length: 16 }, async (_, w) => {
      for (let i = next++; i < keys.length; i = next++) await clients[(w + i) % clients.length]?.send(new PutObjectCommand({ Bucket: 'many', Key: keys[i], Body: keys[i] }))
    }))
    const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    const listV2 = async (i: number, input: { Prefix?: string, Delimiter?: string, MaxKeys?: number }): Promise<{ keys: string[], prefixes: string[], pages: number }> => {
      const out = { keys: [] as string[], prefixes: [] as string[], pages: 0 }
      for await (const page of paginateListObjectsV2({ client: clients[i] ?? client(c, i) }, { Bucket: 'many', ...input })) {
        out.pages++
        out.keys.push(...(page.Contents ?? []).map(o => o.Key ?? ''))
        out.prefixes.push(...(page.CommonPrefixes ?? []).map(p => p.Prefix ?? ''))
      }
      return out
    }
    for (const i of c.upIndexes()) {
      const all = await listV2(i, {})
      expect(all.keys, `every key through node ${i}`).toEqual(sorted)
      expect(all.pages).toBe(3)
    }
    const inB = await listV2(2, { Prefix: 'b/', MaxKeys: 300 })
    expect(inB.keys).toEqual(sorted.filter(k => k.startsWith('b/')))
    expect(inB.pages).toBe(3)
    const top = await listV2(3, { Delimiter: '/', MaxKeys: 40 })
    expect(top.prefixes).toEqual(['a/', 'b/', 'c/'])
    expect(top.keys).toEqual(sorted.filter(k => !k.includes('/')))
    // v1: markers, as the client sets them from the last key of each page.
    const v1: string[] = []
    let marker: string | undefined
    for (;;) {
      const page = await (clients[0] ?? client(c, 0)).send(new ListObjectsCommand({ Bucket: 'many', Prefix: 'c/', MaxKeys: 250, ...(marker != null ? { Marker: marker } : {}) }))
      v1.push(...(page.Contents ?? []).map(o => o.Key ?? ''))
      if (page.IsTruncated !== true) break
      marker = page.Contents?.at(-1)?.Key
    }
    expect(v1).toEqual(sorted.filter(k => k.startsWith('c/')))
  }, 180_000)

  it('a presigned GET plays with Range; wrong keys, wrong signatures, expired or over-long URLs and anonymous writes are refused', async () => {
    const s3 = client(c, 0)
    await s3.send(new CreateBucketCommand({ Bucket: 'signed' }))
    const data = randomBytes(200_000, 5)
    await s3.send(new PutObjectCommand({ Bucket: 'signed', Key: 'v.mp4', Body: data }))
    const url = await getSignedUrl(client(c, 2), new GetObjectCommand({ Bucket: 'signed', Key: 'v.mp4' }), { expiresIn: 60 })
    const ranged = await fetch(url, { headers: { Range: 'bytes=100-199' } })
    expect(ranged.status, await ranged.clone().text()).toBe(206)
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(Buffer.from(data.subarray(100, 200)))
    const tampered = url.replace(/X-Amz-Signature=([0-9a-f])/, (_m, d: string) => `X-Amz-Signature=${d === '0' ? '1' : '0'}`)
    expect((await fetch(tampered)).status).toBe(403)
    const tooLong = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'signed', Key: 'v.mp4' }), { expiresIn: 604_800 })
    expect((await fetch(tooLong.replace('X-Amz-Expires=604800', 'X-Amz-Expires=604801'))).status).toBe(403)
    const wrongSecret = client(c, 1, { accessKeyId: KEY.accessKeyId, secretAccessKey: 'not-the-secret-0000000000000000000000000' })
    expect(await s3Error(wrongSecret.send(new GetObjectCommand({ Bucket: 'signed', Key: 'v.mp4' })))).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 })
    const stranger = client(c, 1, { accessKeyId: 'AKIANOBODY000000000', secretAccessKey: KEY.secretAccessKey })
    expect(await s3Error(stranger.send(new ListBucketsCommand({})))).toMatchObject({ name: 'InvalidAccessKeyId', status: 403 })
    const anonymous = await fetch(`${c.node(3).s3?.url ?? ''}/signed/v.mp4`, { method: 'PUT', body: 'x' })
    expect(anonymous.status).toBe(403)
    const body = await anonymous.text()
    expect(body).toMatch(/<Code>AccessDenied<\/Code>/)
    expect(body).toContain(`<RequestId>${anonymous.headers.get('x-amz-request-id') ?? '?'}</RequestId>`)
  })
})

describe('S3 on a one-node cluster', () => {
  it('works: the node answers its own namespace without dialling itself, and lists every bucket', async () => {
    const c = await createSimCluster({ nodes: 1, configure: () => ({ s3: { host: '127.0.0.1', port: 0 }, s3AccessKeyId: KEY.accessKeyId, s3SecretAccessKey: KEY.secretAccessKey }) })
    try {
      await c.ready()
      // A bucket goes to a group its view shows ACTIVE: wait for the node's own record to say so (its next heartbeat).
      await c.waitFor(() => c.node(0).membership.view.groups().some(g => g.members.some(m => m.self && m.state === 'ACTIVE')), { message: 'the node sees itself ACTIVE' })
      const s3 = client(c, 0)
      await s3.send(new CreateBucketCommand({ Bucket: 'solo' }))
      await s3.send(new PutObjectCommand({ Bucket: 'solo', Key: 'a/b.txt', Body: 'alone' }))
      expect(await (await s3.send(new GetObjectCommand({ Bucket: 'solo', Key: 'a/b.txt' }))).Body?.transformToString()).toBe('alone')
      expect((await s3.send(new ListObjectsV2Command({ Bucket: 'solo' }))).Contents?.map(o => o.Key)).toEqual(['a/b.txt'])
      // Every bucket is listed (their records share the empty key: merged per bucket, not per key).
      await s3.send(new CreateBucketCommand({ Bucket: 'solo-two' }))
      await s3.send(new CreateBucketCommand({ Bucket: 'solo-three' }))
      await s3.send(new DeleteBucketCommand({ Bucket: 'solo-three' }))
      expect((await s3.send(new ListBucketsCommand({}))).Buckets?.map(b => b.Name)).toEqual(['solo', 'solo-two'])
    } finally {
      await c.close()
    }
  })
})
