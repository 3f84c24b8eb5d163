/**
 * A damaged database: the node refuses to start on it, naming the file and
 * the way out; `dsm node --rebuild` moves it aside and rebuilds the index
 * from the group: the chunks in its volumes are indexed again where they lie
 * when they still verify, and the one that does not is fetched again.
 */
import { createHash } from 'node:crypto'
import { open, readdir, rm, stat, truncate } from 'node:fs/promises'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes, upload } from '../helpers/data.ts'
import { eventually, startProcNode } from '../sim/proc.ts'
import { volumePath } from '../helpers/store-check.ts'
import type { ProcNode } from '../sim/proc.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Every stored chunk of a node (down, or beside it: WAL readers) and where it lives. */
function locations (dataDir: string): Map<string, string> {
  const db = new DatabaseSync(join(dataDir, 'dsm.db'), { readOnly: true })
  try {
    const rows = db.prepare('SELECT digest, volume, offset FROM chunks').all() as Array<{ digest: Uint8Array, volume: number, offset: number }>
    return new Map(rows.map(r => [Buffer.from(r.digest).toString('hex'), `${r.volume}:${r.offset}`]))
  } finally {
    db.close()
  }
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
    const before = locations(dir)
    // One chunk rots on disk, inside its volume.
    const [rotten, at] = [...before].find(([, where]) => !where.startsWith('0:')) as [string, string]
    const [volume, offset] = at.split(':').map(Number) as [number, number]
    const fh = await open(volumePath(dir, volume), 'r+')
    const byte = new Uint8Array(1)
    await fh.read(byte, 0, 1, offset + 100)
    await fh.write(Uint8Array.of((byte[0] ?? 0) ^ 0xff), 0, 1, offset + 100)
    await fh.close()
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
    // Every chunk that still verified was reused where it lay; the rotten one was fetched again (a new needle) and verifies.
    const after = locations(dir)
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort())
    for (const [hex, where] of before) {
      if (hex === rotten) expect(after.get(hex), 'the rotten chunk was fetched again').not.toBe(where)
      else expect(after.get(hex), `${hex.slice(0, 12)}… reused`).toBe(where)
    }
  })
})
