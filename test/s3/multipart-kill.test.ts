/**
 * A member killed in the middle of a multipart upload: the upload either
 * completes correctly when the client retries through another node, or it is
 * invisible — never a partial object, never other bytes. Two moments: a
 * member of the group that holds the parts dies between parts, and the node
 * running CompleteMultipartUpload dies while it streams the parts into the
 * object.
 */
import {
  CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, UploadPartCommand
} from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeMessage } from '../../src/wire/codec.ts'
import { MAX_NAME_VALUE_BYTES, PartRecordSchema } from '../../src/wire/names.ts'
import { createSimCluster } from '../sim/cluster.ts'
import { s3Client, s3Error } from '../helpers/s3.ts'
import { randomBytes, sha256hex } from '../helpers/data.ts'
import type { S3Client } from '@aws-sdk/client-s3'
import type { SimCluster } from '../sim/cluster.ts'

const KEY = { accessKeyId: 'DSMTESTKEY0000000005', secretAccessKey: 'dsm-test-secret-access-key-mpu-kill-0001' }
const MiB = 1024 * 1024
const BUCKET = 'survives'

describe('a member killed mid-multipart', () => {
  let c: SimCluster
  const client = (i: number): S3Client => s3Client(c.node(i).s3?.url ?? '', KEY)
  const read = async (i: number, key: string): Promise<string> =>
    sha256hex(await (await client(i).send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body?.transformToByteArray() ?? new Uint8Array())

  /** Restart a killed node and wait until every view has it ACTIVE again (it finds the cluster by itself). */
  const rejoin = async (i: number): Promise<void> => {
    await c.restart(i)
    await c.waitFor(() => c.upIndexes().every(a => c.upIndexes().every(b => c.node(a).membership.view.get(c.peerId(b))?.state === 'ACTIVE')), { message: `node ${i} back in every view`, timeoutMs: 60_000 })
  }

  beforeAll(async () => {
    // 7 nodes, groups of 3 (copy floor 2): one member of a group may die and its group still takes writes.
    c = await createSimCluster({ nodes: 7, groupSize: 3, sequential: true, joinSettleMs: 300, configure: () => ({ s3: { host: '127.0.0.1', port: 0 }, s3AccessKeyId: KEY.accessKeyId, s3SecretAccessKey: KEY.secretAccessKey }) })
    await c.ready()
    await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.groups().length >= 2), { message: 'the groups everywhere' })
    await client(0).send(new CreateBucketCommand({ Bucket: BUCKET }))
  }, 120_000)
  afterAll(async () => { await c.close() })

  it('between parts (a member of a group holding them): the client retries through another node and completes byte-identical', async () => {
    const data = randomBytes(10 * MiB + 7, 1)
    const key = 'between-parts'
    const up = await client(0).send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))
    const p1 = await client(1).send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId, PartNumber: 1, Body: data.subarray(0, 5 * MiB) }))
    // Kill a member of the group that holds part 1's file (not a node the client talks to below).
    const row = (await c.node(0).replica.names.listRaw(BUCKET, '', 10, { prefix: `\u0000u/${up.UploadId ?? ''}/` })).rows[0]
    if (row == null) throw new Error('part 1 is not recorded')
    const partFile = decodeMessage(PartRecordSchema, row.value, MAX_NAME_VALUE_BYTES).file
    const partGroup = (await c.node(0).replica.open(partFile)).group
    const victim = c.upIndexes().find(i => i !== 2 && i !== 3 && c.node(i).status.group === partGroup)
    if (victim == null) throw new Error(`no member of ${partGroup} to kill`)
    await c.kill(victim)
    const p2 = await retry(async () => client(2).send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId, PartNumber: 2, Body: data.subarray(5 * MiB) })))
    await retry(async () => client(3).send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] } })))
    for (const i of c.upIndexes()) expect(await read(i, key), `through node ${i}`).toBe(sha256hex(data))
    await rejoin(victim)
  }, 180_000)

  it('during the completion (the node running it): a retry through another node completes it, or it had completed; never a partial object', async () => {
    const data = randomBytes(15 * MiB + 3, 2)
    const key = 'during-complete'
    const up = await client(0).send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))
    const parts: Array<{ PartNumber: number, ETag: string | undefined }> = []
    for (let n = 1; n <= 3; n++) {
      const body = data.subarray((n - 1) * 5 * MiB, n === 3 ? data.byteLength : n * 5 * MiB)
      const res = await client(n % 3).send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId, PartNumber: n, Body: body }))
      parts.push({ PartNumber: n, ETag: res.ETag })
    }
    // The completion runs on node 5; it dies once it is streaming the parts into the object (a transfer under way).
    const gateway = 5
    const completing = client(gateway).send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId, MultipartUpload: { Parts: parts } }))
      .then(() => 'completed', (err: Error) => `failed: ${err.name}`)
    await c.waitFor(() => c.node(gateway).status.load > 0 || c.upIndexes().some(i => c.node(i).status.load > 0), { message: 'the completion is streaming', pollMs: 5 })
    await c.kill(gateway)
    const first = await completing
    // Nothing partial is ever visible: the key is absent, or whole.
    const head = await retry(async () => client(0).send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })))
      .then(h => h.ContentLength, (err: { name?: string }) => { if (err.name === 'NotFound' || err.name === 'NoSuchKey') return undefined; throw err })
    expect(head === undefined || head === data.byteLength, `the object is absent or whole (first answer: ${first})`).toBe(true)
    // The client retries through another node: it completes now, or the first completion had finished before the
    // node died (the upload is gone: NoSuchUpload), and then the object must be there, whole.
    const again = await retry(async () => client(6).send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: up.UploadId, MultipartUpload: { Parts: parts } })))
      .then(() => 'completed', async (err: unknown) => (await s3Error(Promise.reject(err))).name)
    expect(['completed', 'NoSuchUpload'], `first answer: ${first}`).toContain(again)
    for (const i of c.upIndexes()) expect(await read(i, key), `through node ${i}`).toBe(sha256hex(data))
    await rejoin(gateway)
  }, 180_000)
})

/** What a client with retries does: try again after 503s and broken connections, a few times. */
async function retry<T> (fn: () => Promise<T>): Promise<T> {
  let last: unknown
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      return await fn()
    } catch (err) {
      last = err
      // A long answer (a completion) carries its error in a 200's body: its name says whether to retry.
      const { name, $metadata } = err as { name?: string, $metadata?: { httpStatusCode?: number } }
      const status = $metadata?.httpStatusCode
      if (status != null && status < 500 && name !== 'ServiceUnavailable' && name !== 'InternalError') throw err
      await new Promise(resolve => setTimeout(resolve, 250 * (attempt + 1)))
    }
  }
  throw last
}
