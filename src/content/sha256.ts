import { sha256 } from 'multiformats/hashes/sha2'

/** SHA-256 of `bytes` (node:crypto in Node, WebCrypto in browsers, through multiformats). */
export async function sha256Digest (bytes: Uint8Array): Promise<Uint8Array> {
  return (await sha256.digest(bytes)).digest
}
