/**
 * `npm run bench -- startup [--chunks N]`: how long a node's store takes to
 * open with N chunks indexed (default 10 million, 1 MiB each, in 1 GiB
 * volumes — 10 TB of sparse files, so the disk holds only the index).
 * Baseline, same run: the one full scan of the chunk index that a start-up
 * check proportional to the chunk count would make (MAX(offset) per volume).
 * Rows carry no leaf hashes (the check never reads them), so the index is
 * ~1 GB instead of ~6 GB; its shape is the store's own (src/store/db.ts).
 */
import { mkdtemp, open, rm, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDb } from '../src/store/db.ts'
import { LocalStore } from '../src/store/local-store.ts'
import { printTable, writeResults } from './lib.ts'

const CHUNK_BYTES = 1024 * 1024
const VOLUME_BYTES = 1024 * 1024 * 1024
const HEADER_BYTES = 40
const ROWS_PER_TX = 200_000

function parse (args: string[]): { chunks: number } {
  const i = args.indexOf('--chunks')
  const chunks = i >= 0 ? Number(args[i + 1]) : 10_000_000
  if (!Number.isInteger(chunks) || chunks < 1) throw new Error(`--chunks must be a positive integer (got ${String(args[i + 1])})`)
  return { chunks }
}

/** Index N chunks of CHUNK_BYTES, packed into volumes, and make each volume file as long as its needles. */
async function populate (dataDir: string, chunks: number): Promise<number> {
  const db = openDb(dataDir)
  const insert = db.sql.prepare('INSERT INTO chunks (digest, volume, offset, length, leaves, crcs, data) VALUES (?, ?, ?, ?, ?, ?, NULL)')
  const perVolume = Math.floor(VOLUME_BYTES / (CHUNK_BYTES + HEADER_BYTES))
  const digest = new Uint8Array(32)
  const view = new DataView(digest.buffer)
  const empty = new Uint8Array(0)
  for (let start = 0; start < chunks; start += ROWS_PER_TX) {
    db.sql.exec('BEGIN')
    for (let i = start; i < Math.min(chunks, start + ROWS_PER_TX); i++) {
      // Digests are uniformly spread in a real store; a multiplicative hash of i spreads these too.
      view.setUint32(0, Math.imul(i, 2654435761) >>> 0)
      view.setUint32(4, i)
      insert.run(digest, 1 + Math.floor(i / perVolume), (i % perVolume) * (CHUNK_BYTES + HEADER_BYTES) + HEADER_BYTES, CHUNK_BYTES, empty, empty)
    }
    db.sql.exec('COMMIT')
  }
  db.sql.exec('PRAGMA wal_checkpoint(TRUNCATE)')
  await db.close()
  const volumes = Math.ceil(chunks / perVolume)
  await mkdir(join(dataDir, 'volumes'), { recursive: true })
  for (let v = 1; v <= volumes; v++) {
    const n = v < volumes ? perVolume : chunks - (volumes - 1) * perVolume
    const fh = await open(join(dataDir, 'volumes', `${String(v).padStart(8, '0')}.vol`), 'w')
    await fh.truncate(n * (CHUNK_BYTES + HEADER_BYTES))
    await fh.close()
  }
  return volumes
}

async function timeStart (dataDir: string): Promise<{ openMs: number, startMs: number }> {
  const t0 = performance.now()
  const db = openDb(dataDir)
  const t1 = performance.now()
  const store = new LocalStore({ db, dataDir, reserve: { bytes: 0 }, capacity: async () => ({ total: 2 ** 50, free: 2 ** 50 }) })
  const report = await store.start()
  const t2 = performance.now()
  if (report.filesMissingChunks.length > 0) throw new Error('the check found chunks missing: the populated store is not what it should be')
  await store.stop()
  await db.close()
  return { openMs: t1 - t0, startMs: t2 - t1 }
}

async function timeFullScan (dataDir: string): Promise<number> {
  const db = openDb(dataDir)
  const t0 = performance.now()
  db.sql.prepare('SELECT volume, MAX(offset + length) AS tail FROM chunks WHERE volume > 0 GROUP BY volume').all()
  const ms = performance.now() - t0
  await db.close()
  return ms
}

export async function run (args: string[]): Promise<void> {
  const { chunks } = parse(args)
  const dataDir = await mkdtemp(join(tmpdir(), 'dsm-bench-startup-'))
  try {
    const t0 = performance.now()
    const volumes = await populate(dataDir, chunks)
    process.stdout.write(`indexed ${chunks} chunks in ${volumes} volumes (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`)
    await timeFullScan(dataDir) // warm the page cache for both, so neither pays for the first read from disk
    const scanMs = await timeFullScan(dataDir)
    const starts = [await timeStart(dataDir), await timeStart(dataDir), await timeStart(dataDir)].sort((a, b) => a.startMs - b.startMs)
    const median = starts[1] as { openMs: number, startMs: number }
    printTable(`store start-up with ${chunks} chunks in ${volumes} volumes (median of 3)`, ['step', 'ms'], [
      ['open the database (migrations, table checks)', median.openMs],
      ['LocalStore.start (volume tails, start-up check)', median.startMs],
      ['baseline: one scan of the chunk index', scanMs]
    ])
    const path = writeResults('startup', { chunks, volumes, open_ms: median.openMs, start_ms: median.startMs, full_scan_ms: scanMs, start_vs_full_scan: median.startMs / scanMs })
    process.stdout.write(`\nwrote ${path}\n`)
  } finally {
    await rm(dataDir, { recursive: true, force: true })
  }
}
