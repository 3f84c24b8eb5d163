/**
 * Cut a byte stream into fixed-size chunks (the last one may be short),
 * holding at most one chunk plus one incoming piece in memory.
 */
import { Uint8ArrayList } from 'uint8arraylist'
import { MessageTooLargeError } from '../errors.ts'

export interface ChunkOptions {
  /** Refuse streams longer than this many bytes. */
  maxBytes?: number
}

export async function * chunkStream (source: AsyncIterable<Uint8Array | Uint8ArrayList>, chunkSize: number, options: ChunkOptions = {}): AsyncGenerator<Uint8Array> {
  const buf = new Uint8ArrayList()
  let total = 0
  for await (const piece of source) {
    total += piece.byteLength
    if (options.maxBytes != null && total > options.maxBytes) {
      throw new MessageTooLargeError(`upload exceeds the limit of ${options.maxBytes} bytes`)
    }
    buf.append(piece)
    while (buf.byteLength >= chunkSize) {
      yield buf.subarray(0, chunkSize)
      buf.consume(chunkSize)
    }
  }
  if (buf.byteLength > 0) yield buf.subarray()
}
