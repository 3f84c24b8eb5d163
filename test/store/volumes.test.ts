/**
 * Volumes under concurrency: appends that cross volume boundaries while
 * others are in flight, reads while their handles are evicted or their
 * volume removed, and a failed fdatasync. The first test is the reproduction
 * of the rotation race (two Volume objects for one file, each writing from
 * offset 0): 64 concurrent appends of 100 KB into 1 MiB volumes.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { GroupCommit } from '../../src/store/group-commit.ts'
import { NEEDLE_HEADER_BYTES, VolumeSet } from '../../src/store/volumes.ts'
import { nodeVolumeFiles } from '../../src/store/volume-files.ts'
import type { NeedleLocation } from '../../src/store/volumes.ts'
import type { VolumeFile, VolumeFiles } from '../../src/store/volume-files.ts'

const MiB = 1024 * 1024
const dirs: string[] = []

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dsm-volumes-'))
  dirs.push(dir)
  return dir
}

afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

const digestOf = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest()

async function startSet (init: ConstructorParameters<typeof VolumeSet>[1] = {}): Promise<VolumeSet> {
  const set = new VolumeSet(await tempDir(), init)
  await set.start(() => 0)
  return set
}

describe('volumes under concurrent appends', () => {
  it('64 concurrent appends of 100 KB into 1 MiB volumes: one rotation at a time, every needle reads back', async () => {
    const set = await startSet({ maxBytes: MiB })
    const needles = Array.from({ length: 64 }, () => randomBytes(100_000))
    const at = await Promise.all(needles.map(async n => set.append(digestOf(n), n)))
    await set.sync(at.map(a => a.volume))
    const perVolume = Math.floor(MiB / (100_000 + NEEDLE_HEADER_BYTES))
    expect((await set.ids()).length).toBe(Math.ceil(64 / perVolume))
    expect(set.rotations).toBe(Math.ceil(64 / perVolume) - 1)
    // No two needles share a byte of one volume.
    const sorted = [...at].sort((a, b) => a.volume - b.volume || a.offset - b.offset)
    for (let i = 1; i < sorted.length; i++) {
      const [prev, next] = [sorted[i - 1] as NeedleLocation, sorted[i] as NeedleLocation]
      if (prev.volume === next.volume) expect(next.offset - NEEDLE_HEADER_BYTES).toBeGreaterThanOrEqual(prev.offset + prev.length)
    }
    let wrong = 0
    for (const [i, n] of needles.entries()) {
      const a = at[i] as NeedleLocation
      if (!Buffer.from(await set.read(a.volume, a.offset, a.length)).equals(n)) wrong++
    }
    expect(wrong).toBe(0)
    // Every sealed volume was flushed and its write handle closed by the store itself.
    expect(set.writableCount).toBe(1)
    // And each volume's headers scan back to exactly its needles.
    let scanned = 0
    for (const id of await set.ids()) for await (const _ of set.scan(id)) scanned++
    expect(scanned).toBe(64)
    await set.stop()
  })

  it('appends that never sync still leave no write handle open once their volume is sealed', async () => {
    const set = await startSet({ maxBytes: MiB })
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 12 }, async () => { const n = randomBytes(100_000); await set.append(digestOf(n), n) }))
    }
    await expectEventually(() => set.writableCount === 1)
    await set.stop()
  })

  it('reads race handle eviction and volume removal without failing', async () => {
    const set = await startSet({ maxBytes: 256 * 1024, readHandles: 2 })
    const needles = Array.from({ length: 40 }, () => randomBytes(60_000))
    const at = await Promise.all(needles.map(async n => set.append(digestOf(n), n)))
    await set.sync(at.map(a => a.volume))
    expect((await set.ids()).length).toBeGreaterThan(6)
    // Many readers over many volumes with 2 cached handles: each eviction happens under someone's read.
    const reads = Array.from({ length: 400 }, async (_, i) => {
      const k = (i * 7) % needles.length
      const a = at[k] as NeedleLocation
      return Buffer.from(await set.read(a.volume, a.offset, a.length)).equals(needles[k] as Uint8Array)
    })
    expect((await Promise.all(reads)).every(Boolean)).toBe(true)
    // A volume removed while it is being read: the reads in flight finish on their handle.
    for (const a of at) set.release(a.volume)
    const victim = (at[0] as NeedleLocation).volume
    const during = Array.from({ length: 20 }, async () => set.read(victim, (at[0] as NeedleLocation).offset, 60_000))
    await set.remove(victim)
    for (const r of await Promise.all(during)) expect(Buffer.from(r).equals(needles[0] as Uint8Array)).toBe(true)
    await expect(set.read(victim, 0, 10)).rejects.toMatchObject({ code: 'ENOENT' })
    await set.stop()
    expect(set.readHandles).toBe(0)
  })

  it('a volume holding needles not yet indexed, or still written, cannot be removed', async () => {
    const set = await startSet({ maxBytes: 128 * 1024 })
    const first = await set.append(digestOf(Buffer.from('a')), randomBytes(100_000))
    const second = await set.append(digestOf(Buffer.from('b')), randomBytes(100_000))
    expect(second.volume).toBe(first.volume + 1)
    await set.sync([first.volume, second.volume])
    expect(set.busy(first.volume)).toBe(true)
    await expect(set.remove(first.volume)).rejects.toThrow(/not yet indexed/)
    set.release(first.volume)
    expect(set.busy(first.volume)).toBe(false)
    await set.remove(first.volume)
    expect(set.isRemoved(first.volume)).toBe(true)
    await expect(set.remove(second.volume)).rejects.toThrow(/still written/)
    await set.stop()
  })

  it('a failed fdatasync is final: the volume refuses every later sync and appends move on to a new volume', async () => {
    let failNext = false
    const files: VolumeFiles = {
      ...nodeVolumeFiles,
      async openWrite (path, create) {
        const file = await nodeVolumeFiles.openWrite(path, create)
        const wrapped: VolumeFile = {
          writev: async (b, p) => { await file.writev(b, p) },
          read: async (...a) => file.read(...a),
          datasync: async () => { if (failNext) { failNext = false; throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }) } await file.datasync() },
          truncate: async (l) => { await file.truncate(l) },
          size: async () => file.size(),
          close: async () => { await file.close() }
        }
        return wrapped
      }
    }
    const set = await startSet({ maxBytes: MiB, files })
    const a = await set.append(digestOf(Buffer.from('a')), randomBytes(1000))
    failNext = true
    await expect(set.sync([a.volume])).rejects.toMatchObject({ name: 'DiskSyncError' })
    // The kernel may have dropped the pages: a later fsync that succeeds proves nothing, so it is never tried.
    await expect(set.sync([a.volume])).rejects.toMatchObject({ name: 'DiskSyncError' })
    const b = await set.append(digestOf(Buffer.from('b')), randomBytes(1000))
    expect(b.volume).toBe(a.volume + 1)
    await set.sync([b.volume])
    await set.stop()
  })

  it('stop waits for the appends in flight, then refuses new ones', async () => {
    const set = await startSet({ maxBytes: MiB })
    const inFlight = Promise.allSettled(Array.from({ length: 16 }, async () => { const n = randomBytes(200_000); return set.append(digestOf(n), n) }))
    await set.stop()
    const settled = await inFlight
    // Each append either finished before the handles closed or was refused; none hit a closed handle.
    for (const s of settled) if (s.status === 'rejected') expect((s.reason as Error).name).toBe('StoreStoppedError')
    await expect(set.append(digestOf(Buffer.from('x')), Buffer.from('x'))).rejects.toMatchObject({ name: 'StoreStoppedError' })
    // Nothing was left open for the garbage collector.
    expect(set.writableCount).toBe(0)
    expect(set.readHandles).toBe(0)
    expect((await readdir(set.dir)).length).toBeGreaterThan(0)
  })
})

describe('group commit', () => {
  it('no caller is released before a flush that began after its write has finished (random interleavings)', async () => {
    // The volume's flush: skipped when nothing was written since the last one began (as VolumeSet's is).
    let written = 0
    let durable = 0
    let dirty = false
    const rng = seeded(7)
    const pause = async (): Promise<void> => {
      // Any number of microtask turns, or a macrotask: callers land in every window between two steps of a flush.
      const n = Math.floor(rng() * 10)
      if (n === 9) { await new Promise(resolve => setImmediate(resolve)); return }
      for (let i = 0; i < n; i++) await null
    }
    const gc = new GroupCommit(async () => {
      if (!dirty) return
      dirty = false
      const covered = written
      await pause()
      durable = Math.max(durable, covered)
    })
    let early = 0
    await Promise.all(Array.from({ length: 3000 }, async () => {
      await pause()
      const mine = ++written
      dirty = true
      await pause()
      await gc.sync()
      if (durable < mine) early++
    }))
    expect(early).toBe(0)
  })

  it('a failed flush fails every later sync', async () => {
    let fail = true
    const gc = new GroupCommit(async () => { if (fail) throw new Error('EIO') })
    await expect(gc.sync()).rejects.toMatchObject({ name: 'DiskSyncError' })
    fail = false
    await expect(gc.sync()).rejects.toMatchObject({ name: 'DiskSyncError' })
  })
})

function seeded (seed: number): () => number {
  let x = seed
  return () => { x = (x * 1103515245 + 12345) % 2147483648; return x / 2147483648 }
}

async function expectEventually (check: () => boolean): Promise<void> {
  // Waits on the store's own work (flushes on libuv's pool), turn by turn; the test's timeout bounds it.
  while (!check()) await new Promise(resolve => setTimeout(resolve, 5))
}
