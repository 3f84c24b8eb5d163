/**
 * WAL checkpoints in a worker thread. The node's connection never
 * checkpoints (wal_autocheckpoint = 0): a checkpoint copies the WAL into the
 * database file and syncs both, which on the event loop would stall every
 * request for the duration. The worker holds its own connection to the same
 * file and runs a PASSIVE checkpoint (never blocking writers) every
 * CHECKPOINT_INTERVAL_MS; SQLite then restarts the WAL from its beginning at
 * the next write, so the WAL stays small.
 */
import { Worker } from 'node:worker_threads'

/** How often the worker copies the WAL into the database. */
export const CHECKPOINT_INTERVAL_MS = 1_000

export class Checkpointer {
  private readonly worker: Worker
  private readonly exited: Promise<void>

  constructor (dbPath: string, intervalMs = CHECKPOINT_INTERVAL_MS) {
    this.worker = new Worker(new URL('./checkpoint-worker.ts', import.meta.url), { workerData: { dbPath, intervalMs } })
    // The worker must not keep a process alive that is done (tests, CLI tools); it is stopped explicitly otherwise.
    this.worker.unref()
    this.exited = new Promise(resolve => { this.worker.once('exit', () => { resolve() }) })
    this.worker.on('error', () => { /* a failed checkpoint only lets the WAL grow; the next start checkpoints */ })
  }

  /** Stop after a last checkpoint. */
  async stop (): Promise<void> {
    // Held while it finishes: an unreferenced worker would not keep the process alive to report its exit.
    this.worker.ref()
    this.worker.postMessage('stop')
    await this.exited
  }
}
