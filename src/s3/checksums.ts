/**
 * The checksums current S3 clients send by default (`x-amz-checksum-*`, as a
 * header or an aws-chunked trailer): CRC-32 (node:zlib), CRC-32C
 * (@aws-crypto/crc32c), CRC-64/NVME (@aws-sdk/crc64-nvme, the SDK's own),
 * SHA-1 and SHA-256 (node:crypto). Values are base64 of the big-endian digest.
 */
import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { Crc32c } from '@aws-crypto/crc32c'
import { Crc64Nvme } from '@aws-sdk/crc64-nvme'
import { s3Errors } from './errors.ts'

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const
export type ChecksumAlgorithm = typeof CHECKSUM_ALGORITHMS[number]

export interface Checksummer {
  update (data: Uint8Array): void
  /** base64 of the digest */
  digest (): Promise<string>
}

function u32 (n: number): string {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b.toString('base64')
}

export function checksummer (algorithm: ChecksumAlgorithm): Checksummer {
  switch (algorithm) {
    case 'crc32': {
      let value = 0
      return { update: (d) => { value = crc32(d, value) }, digest: async () => u32(value) }
    }
    case 'crc32c': {
      const c = new Crc32c()
      return { update: (d) => { c.update(d) }, digest: async () => u32(c.digest()) }
    }
    case 'crc64nvme': {
      const c = new Crc64Nvme()
      return { update: (d) => { c.update(d) }, digest: async () => Buffer.from(await c.digest()).toString('base64') }
    }
    default: {
      const h = createHash(algorithm)
      return { update: (d) => { h.update(d) }, digest: async () => h.digest('base64') }
    }
  }
}

/** The algorithm named by an `x-amz-checksum-<alg>` header or trailer name, if it is one. */
export function algorithmOf (name: string): ChecksumAlgorithm | undefined {
  const m = /^x-amz-checksum-([a-z0-9]+)$/.exec(name.toLowerCase())
  const alg = m?.[1]
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(alg ?? '') ? alg as ChecksumAlgorithm : undefined
}

/** Compare a computed checksum with the one the client sent: S3's BadDigest when they differ. */
export function checkChecksum (algorithm: ChecksumAlgorithm, expected: string, actual: string): void {
  if (expected.trim() !== actual) throw s3Errors.badChecksum(algorithm)
}
