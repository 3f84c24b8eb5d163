/**
 * A chunk digest as a map key: its lowercase hex (what uint8arrays' `base16` gives), by Node's native
 * encoder. The pins take and drop a key per chunk of every upload; through the multibase encoder that was
 * ~2 µs each (issue 23's member profile: ~45 ms of a 5 s cell).
 */
import { Buffer } from 'node:buffer'

export function digestKey (digest: Uint8Array): string {
  return Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex')
}
