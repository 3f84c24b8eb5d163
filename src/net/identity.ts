/**
 * The node's libp2p identity: an Ed25519 key kept in the data dir, so a node
 * keeps its peer id across restarts (peers, groups and DHT records refer to it).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { InvalidConfigError } from '../errors.ts'
import { atomicWriteFile } from '../util/fs.ts'
import type { PrivateKey } from '@libp2p/interface'

export const IDENTITY_FILE_NAME = 'peer.key'

export async function loadOrCreateIdentity (dataDir: string): Promise<PrivateKey> {
  const path = join(dataDir, IDENTITY_FILE_NAME)
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    const key = await generateKeyPair('Ed25519')
    await atomicWriteFile(path, privateKeyToProtobuf(key), 0o600)
    return key
  }
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    // Never silently replace a damaged identity: the node would become someone else.
    throw new InvalidConfigError(`${path} is not a valid private key (${(err as Error).message}); restore it or remove it to start as a new node`)
  }
}
