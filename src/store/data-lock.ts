/**
 * One node per data directory. Two processes appending to the same volumes
 * and database would corrupt both (the same class of fault as two rotations
 * of one volume), so a node takes `<data>/LOCK` — its pid — before it opens
 * anything, and gives it back when it stops. A lock left by a process that
 * is gone (kill -9, a crash, a reboot) is taken over: its pid no longer
 * names a running node process.
 */
import { readFileSync } from 'node:fs'
import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { DataDirLockedError } from '../errors.ts'

export const LOCK_FILE_NAME = 'LOCK'

/** Whether `pid` is a running process other than this one that looks like a node (a reused pid of another program is not). */
function holderAlive (pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    return /node|dsm/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))
  } catch {
    return true
  }
}

/** Take the data directory's lock, or throw DataDirLockedError naming the process that holds it; returns its release. */
export async function lockDataDir (dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, LOCK_FILE_NAME)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o644)
      try { await fh.writeFile(`${process.pid}\n`) } finally { await fh.close() }
      return async () => { await rm(path, { force: true }) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim())
    if (holderAlive(pid)) {
      throw new DataDirLockedError(`another dsm node (pid ${pid}) is running on ${dataDir}; two nodes on one data directory would corrupt it. Stop it first, or give this node its own --data directory`)
    }
    // Left by a process that is gone: take it over.
    await rm(path, { force: true })
  }
  throw new DataDirLockedError(`could not take the lock of ${dataDir} (${path}): another node is starting on it`)
}
