import { randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { dirname, join, basename } from 'node:path'

/** Make a temp path next to `path`, so the final rename stays on one file system. */
export function tempPathFor (path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
}

/** fsync a directory so a rename into it survives a crash. */
export async function fsyncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

/**
 * Write a small file atomically: temp file, fsync, rename, fsync the directory.
 * Readers see the old content or the new one, never a torn write.
 */
export async function atomicWriteFile (path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  const tmp = tempPathFor(path)
  try {
    const fh = await open(tmp, 'wx', mode)
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
    await fsyncDir(dirname(path))
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
