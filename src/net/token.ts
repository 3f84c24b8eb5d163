/**
 * The cluster token that uploads and deletes over HTTP must present
 * (`Authorization: Bearer TOKEN`). Given by config (`--token`, DSM_TOKEN,
 * dsm.json); else the node makes one at first start and keeps it in the data
 * dir (mode 0600), so a lone node is closed by default and its owner can read
 * the token from disk. Give every node of a cluster the same token so any
 * node takes a client's writes and honours URLs signed by any other.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MIN_TOKEN_CHARS } from '../constants.ts'
import { InvalidConfigError } from '../errors.ts'
import { atomicWriteFile } from '../util/fs.ts'

export const TOKEN_FILE_NAME = 'token'

export interface NodeToken {
  token: string
  /** Where it came from, for the start-up log. */
  source: 'config' | 'file' | 'generated'
  path?: string
}

export async function loadOrCreateToken (dataDir: string, configured: string | null): Promise<NodeToken> {
  if (configured != null) return { token: configured, source: 'config' }
  const path = join(dataDir, TOKEN_FILE_NAME)
  try {
    const token = (await readFile(path, 'utf8')).trim()
    if (token.length < MIN_TOKEN_CHARS) throw new InvalidConfigError(`${path} holds a token shorter than ${MIN_TOKEN_CHARS} characters; fix it or remove it to have a new one made`)
    return { token, source: 'file', path }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const token = randomBytes(24).toString('base64url')
  await atomicWriteFile(path, `${token}\n`, 0o600)
  return { token, source: 'generated', path }
}
