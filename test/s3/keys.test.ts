/**
 * S3 access keys made with the CLI (`dsm key create|list|delete`): stored
 * replicated, sealed with the cluster secret (the secret is on no disk in
 * clear), usable on every node, limited to their buckets and rights, and
 * gone everywhere once deleted.
 */
import { CreateBucketCommand, GetObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSimCluster } from '../sim/cluster.ts'
import { dsm, eventually } from '../sim/proc.ts'
import { ACCESS_KEYS_BUCKET } from '../../src/wire/names.ts'
import type { SimCluster } from '../sim/cluster.ts'

interface KeyJson { accessKeyId: string, secretAccessKey?: string, buckets: string[], read: boolean, write: boolean }

function client (c: SimCluster, i: number, k: KeyJson): S3Client {
  return new S3Client({ endpoint: c.node(i).s3?.url ?? '', region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey ?? '' }, maxAttempts: 1 })
}

async function s3Error (p: Promise<unknown>): Promise<string> {
  try { await p } catch (err) {
    if (err instanceof S3ServiceException) return err.name
    throw err
  }
  return 'no error'
}

async function makeKey (c: SimCluster, i: number, args: string[]): Promise<KeyJson> {
  const out = await dsm(['key', 'create', '--json', '--node', c.node(i).http?.url ?? '', ...args])
  expect(out.code, out.stderr).toBe(0)
  return JSON.parse(out.stdout) as KeyJson
}

describe('S3 access keys', () => {
  let c: SimCluster
  beforeAll(async () => {
    c = await createSimCluster({ nodes: 4, groupSize: 2, sequential: true, joinSettleMs: 300, http: true, configure: () => ({ s3: { host: '127.0.0.1', port: 0 } }) })
    await c.ready()
    await c.waitFor(() => c.upIndexes().every(i => c.node(i).membership.view.groups().length === 2), { message: 'two groups everywhere' })
  }, 120_000)
  afterAll(async () => { await c.close() })

  it('a key made with dsm key create works on every node; its secret is sealed at rest', async () => {
    const admin = await makeKey(c, 1, ['--name', 'admin'])
    expect(admin.accessKeyId).toMatch(/^DSM[A-Z2-7]{17}$/)
    await client(c, 2, admin).send(new CreateBucketCommand({ Bucket: 'owned' }))
    await client(c, 3, admin).send(new PutObjectCommand({ Bucket: 'owned', Key: 'k', Body: 'hello' }))
    for (const i of c.upIndexes()) expect(await (await client(c, i, admin).send(new GetObjectCommand({ Bucket: 'owned', Key: 'k' }))).Body?.transformToString()).toBe('hello')
    const listed = await dsm(['key', 'list', '--json', '--node', c.node(0).http?.url ?? ''])
    const keys = JSON.parse(listed.stdout) as KeyJson[]
    expect(keys.map(k => k.accessKeyId)).toContain(admin.accessKeyId)
    expect(listed.stdout).not.toContain(admin.secretAccessKey)
    // Where the key table lives, its rows hold no secret in clear.
    const secret = Buffer.from(admin.secretAccessKey ?? '')
    for (const i of c.upIndexes()) {
      const row = c.node(i).store.names.get(ACCESS_KEYS_BUCKET, admin.accessKeyId)
      if (row?.value != null) expect(Buffer.from(row.value).includes(secret)).toBe(false)
    }
    expect(c.upIndexes().filter(i => c.node(i).store.names.get(ACCESS_KEYS_BUCKET, admin.accessKeyId) != null).length).toBeGreaterThanOrEqual(2)
  })

  it('a key limited to one bucket and to reads can do nothing else; a deleted key stops working everywhere', async () => {
    const admin = await makeKey(c, 0, [])
    await client(c, 0, admin).send(new CreateBucketCommand({ Bucket: 'public-one' }))
    await client(c, 0, admin).send(new CreateBucketCommand({ Bucket: 'private-two' }))
    await client(c, 1, admin).send(new PutObjectCommand({ Bucket: 'public-one', Key: 'a', Body: 'a' }))
    const reader = await makeKey(c, 2, ['--bucket', 'public-one', '--read'])
    expect(reader).toMatchObject({ buckets: ['public-one'], read: true, write: false })
    expect(await (await client(c, 3, reader).send(new GetObjectCommand({ Bucket: 'public-one', Key: 'a' }))).Body?.transformToString()).toBe('a')
    expect(await s3Error(client(c, 3, reader).send(new PutObjectCommand({ Bucket: 'public-one', Key: 'b', Body: 'b' })))).toBe('AccessDenied')
    expect(await s3Error(client(c, 3, reader).send(new GetObjectCommand({ Bucket: 'private-two', Key: 'a' })))).toBe('AccessDenied')
    expect((await client(c, 1, reader).send(new ListBucketsCommand({}))).Buckets?.map(b => b.Name)).toEqual(['public-one'])
    const del = await dsm(['key', 'delete', reader.accessKeyId, '--node', c.node(1).http?.url ?? ''])
    expect(del.code, del.stderr).toBe(0)
    // Every node forgets it once its short cache expires.
    for (const i of c.upIndexes()) {
      const name = await eventually(async () => s3Error(client(c, i, reader).send(new GetObjectCommand({ Bucket: 'public-one', Key: 'a' }))), n => n !== 'no error', 30_000, `node ${i} refuses the deleted key`)
      expect(name).toBe('InvalidAccessKeyId')
    }
  })
})
