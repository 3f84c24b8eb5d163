/**
 * A damaged database: the node refuses to start on it, naming the file and
 * the way out; `dsm node --rebuild` moves it aside and rebuilds the index
 * from the group, reusing every chunk file that still verifies (same inode)
 * and fetching the one that does not.
 */
import { createHash } from 'node:crypto'
import { open, readFile, readdir, rm, stat, truncate } from 'node:fs/promises'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashChunk } from '../src/replica/chunk-hash.ts'
import { randomBytes, upload } from './helpers/data.ts'
import { eventually, startProcNode } from './helpers/proc.ts'
import type { ProcNode } from './helpers/proc.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function chunkFiles (dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'chunks')
  return (await readdir(root, { recursive: true })).filter(p => /[0-9a-f]{64}$/.test(p)).map(p => join(root, p)).sort()
}

describe('a member with a damaged database', () => {
  let root: string
  const nodes: ProcNode[] = []
  const files = new Map<string, string>()
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-rebuild-'))
    nodes.push(await startProcNode({ dataDir: join(root, 'n1'), args: ['--group', 'g1'] }))
    for (const name of ['n2', 'n3']) nodes.push(await startProcNode({ dataDir: join(root, name), args: ['--group', 'g1'], bootstrap: [nodes[0]?.addr ?? ''] }))
    await eventually(async () => (await (await fetch(`${nodes[0]?.url ?? ''}/api/groups`)).json()) as Array<{ members: Array<{ state: string }> }>,
      g => g[0]?.members.filter(m => m.state === 'ACTIVE').length === 3, 30_000, 'g1 whole')
    for (let k = 0; k < 4; k++) {
      const data = randomBytes(2 * 1024 * 1024 + 1000 * k, 60 + k)
      const up = await upload(nodes[k % 3]?.url ?? '', data, `f${k}.bin`)
      expect(up.status, JSON.stringify(up.body)).toBe(201)
      files.set(up.body.id as string, sha(data))
    }
  }, 90_000)
  afterAll(async () => {
    await Promise.all(nodes.map(async n => n.stop()))
    await rm(root, { recursive: true, force: true })
  })

  it('refuses to start on it (naming the file and --rebuild); with --rebuild it syncs the index again, reusing chunks that verify', async () => {
    const dir = join(root, 'n3')
    const victim = nodes[2] as ProcNode
    await victim.stop()
    const before = await chunkFiles(dir)
    // A file's identity: its inode and change time (ext4 may hand a freed inode number to the next new file).
    const identity = async (p: string): Promise<string> => { const st = await stat(p); return `${st.ino}:${st.ctimeMs}` }
    // One chunk rots on disk (in place: same inode), and the database is cut in half.
    const rotten = before[0] as string
    const fh = await open(rotten, 'r+')
    const byte = new Uint8Array(1)
    await fh.read(byte, 0, 1, 100)
    await fh.write(Uint8Array.of((byte[0] ?? 0) ^ 0xff), 0, 1, 100)
    await fh.close()
    const identities = new Map(await Promise.all(before.map(async p => [p, await identity(p)] as const)))
    const db = join(dir, 'dsm.db')
    await truncate(db, Math.floor((await stat(db)).size / 2))
    await rm(`${db}-wal`, { force: true })

    const refused = await startProcNode({ dataDir: dir, args: ['--group', 'g1'], bootstrap: [nodes[0]?.addr ?? ''] }).then(() => undefined, (err: Error) => err.message)
    expect(refused).toMatch(/exited with 1/)
    expect(refused).toContain(db)
    expect(refused).toMatch(/damaged/)
    expect(refused).toMatch(/dsm node --rebuild/)

    const rebuilt = await startProcNode({ dataDir: dir, args: ['--group', 'g1', '--rebuild'], bootstrap: [nodes[0]?.addr ?? ''] })
    nodes[2] = rebuilt
    await eventually(async () => (await (await fetch(`${rebuilt.url}/api/id`)).json() as { state: string }).state, s => s === 'ACTIVE', 30_000, 'rebuilt member ACTIVE')
    expect((await readdir(dir)).some(f => f.startsWith('damaged-')), 'the damaged database was kept aside').toBe(true)
    // Every file is whole here again, from its own disk.
    const listed = await (await fetch(`${rebuilt.url}/api/files`)).json() as Array<{ id: string }>
    expect(listed.map(f => f.id).sort()).toEqual([...files.keys()].sort())
    for (const [id, hash] of files) expect(sha(new Uint8Array(await (await fetch(`${rebuilt.url}/files/${id}`)).arrayBuffer()))).toBe(hash)
    // Chunk files were reused (same inode) except the rotten one, which was fetched again (a new file).
    const after = await chunkFiles(dir)
    expect(after).toEqual(before)
    for (const p of after) {
      if (p === rotten) expect(await identity(p), 'the rotten chunk was replaced').not.toBe(identities.get(p))
      else expect(await identity(p), `${p} reused`).toBe(identities.get(p))
    }
    // …by the right bytes: the chunk hashes to its name again.
    const fixed = (await hashChunk(new Uint8Array(await readFile(rotten)))).digest
    expect(Buffer.from(fixed).toString('hex')).toBe(basename(rotten))
  })
})
