/**
 * An S3 key record written with its object's file, in one commit
 * (replica/carried-name.ts), on a group of three real nodes: the record is
 * applied by the copy floor before the PUT is acknowledged, so every node
 * reads and lists it at once; a member holding a newer stamp of the name
 * makes the coordinator fall back to the ordinary write, which still wins;
 * objects too big for the channel take the ordinary path.
 */
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeMessage } from '../../src/wire/codec.ts'
import { ObjectRecordSchema } from '../../src/wire/names.ts'
import { createSimCluster } from '../sim/cluster.ts'
import { s3Client } from '../helpers/s3.ts'
import { randomBytes, sha256hex } from '../helpers/data.ts'
import type { S3Client } from '@aws-sdk/client-s3'
import type { SimCluster } from '../sim/cluster.ts'

const KEY = { accessKeyId: 'DSMTESTKEY0000000009', secretAccessKey: 'dsm-test-secret-access-key-carried-0001' }
const BUCKET = 'carried'

describe('S3 key records carried by their file\'s commit', () => {
  let c: SimCluster
  const client = (i: number): S3Client => s3Client(c.node(i).s3?.url ?? '', KEY)
  const read = async (i: number, key: string): Promise<string> => sha256hex(await (await client(i).send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body?.transformToByteArray() ?? new Uint8Array())
  /** The members whose own table holds `key` with the record of `file`. */
  const holders = (key: string, file: string): number[] => [0, 1, 2].filter(i => {
    const row = c.node(i).store.names.get(BUCKET, key)
    return row?.live === true && row.value != null && Buffer.from(row.value).includes(Buffer.from(file))
  })

  beforeAll(async () => {
    c = await createSimCluster({ nodes: 3, groupSize: 3, sequential: true, joinSettleMs: 300, configure: () => ({ s3: { host: '127.0.0.1', port: 0 }, s3AccessKeyId: KEY.accessKeyId, s3SecretAccessKey: KEY.secretAccessKey }) })
    await c.ready()
    await c.waitFor(() => [0, 1, 2].every(i => c.node(i).membership.view.groupMembers('g1').filter(m => m.state === 'ACTIVE').length === 3), { message: 'one group of three ACTIVE' })
    await client(0).send(new CreateBucketCommand({ Bucket: BUCKET }))
  }, 120_000)
  afterAll(async () => { await c.close() })

  it('rides in the commit: written by the copy floor before the answer, read and listed through every node at once', async () => {
    const replica = c.node(0).replica
    const bytes = randomBytes(4096)
    let file = ''
    const value = (id: string): Uint8Array => { file = id; return encodeMessage(ObjectRecordSchema, { file: id, own: true, size: bytes.byteLength, etag: '"x"', mime: 'video/mp4', meta: {}, modified: Date.now() }) }
    const result = await replica.upload({ name: 'direct.mp4', size: bytes.byteLength, tag: 'carried-direct' }, (async function * () { yield bytes })(), { name: { bucket: BUCKET, key: 'direct.mp4', group: 'g1', value } })
    expect(result.named).toBe(true)
    expect(file).toBe(result.id)
    // The floor (2 of 3) applied it before the upload answered; the third hears the decision too.
    expect(holders('direct.mp4', result.id).length).toBeGreaterThanOrEqual(2)
    await c.waitFor(() => holders('direct.mp4', result.id).length === 3, { message: 'every member applied the carried record' })

    // Through S3, each node coordinating in turn: every PUT is read and listed through every node at once.
    for (let n = 0; n < 6; n++) {
      const body = randomBytes(1000 + n * 700)
      const key = `clip-${n}.mp4`
      await client(n % 3).send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }))
      for (const i of [0, 1, 2]) {
        expect(await read(i, key)).toBe(sha256hex(body))
        const listed = await client(i).send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: key }))
        expect(listed.Contents?.map(o => o.Key)).toEqual([key])
      }
    }
  })

  it('a member holding a newer stamp of the name: not carried, and the ordinary write after it still wins', async () => {
    // As if node 1 held an acknowledged write node 0 never saw, stamped by a clock far ahead.
    const ahead = Date.now() + 3_600_000
    await c.node(1).store.applyName({ bucket: BUCKET, key: 'raced.mp4', group: 'g1', live: true, ts: ahead, origin: c.node(1).peerId.toString(), value: encodeMessage(ObjectRecordSchema, { file: 'bafkreiaaaa', size: 1, etag: '"old"', mime: 'video/mp4', meta: {}, modified: 1 }) })
    const bytes = randomBytes(2048)
    const value = (id: string): Uint8Array => encodeMessage(ObjectRecordSchema, { file: id, own: true, size: bytes.byteLength, etag: '"x"', mime: 'video/mp4', meta: {}, modified: Date.now() })
    const result = await c.node(0).replica.upload({ name: 'raced.mp4', size: bytes.byteLength, tag: 'carried-raced' }, (async function * () { yield bytes })(), { name: { bucket: BUCKET, key: 'raced.mp4', group: 'g1', value } })
    expect(result.named).toBeUndefined()

    const body = randomBytes(3000)
    await client(0).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'raced.mp4', Body: body }))
    for (const i of [0, 1, 2]) expect(await read(i, 'raced.mp4')).toBe(sha256hex(body))
  })

  it('an object bigger than one chunk is written the ordinary way and reads back everywhere', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17)
    await client(2).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'big.mp4', Body: body }))
    for (const i of [0, 1, 2]) expect(await read(i, 'big.mp4')).toBe(sha256hex(body))
  })
})
