/** The checkpointer's thread (see ./checkpointer.ts): its own connection, PASSIVE checkpoints on a timer. */
import { DatabaseSync } from 'node:sqlite'
import { parentPort, workerData } from 'node:worker_threads'

const { dbPath, intervalMs } = workerData as { dbPath: string, intervalMs: number }
const db = new DatabaseSync(dbPath)
db.exec('PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;')

const checkpoint = (): void => {
  try {
    db.exec('PRAGMA wal_checkpoint(PASSIVE)')
  } catch {
    // Busy or interrupted: the WAL keeps what it has; the next round copies it.
  }
}

const timer = setInterval(checkpoint, intervalMs)
parentPort?.on('message', (m: unknown) => {
  if (m !== 'stop') return
  clearInterval(timer)
  checkpoint()
  db.close()
  parentPort?.close()
})
