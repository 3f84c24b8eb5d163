/** A file's media type: from its name, else sniffed from its first bytes, else octet-stream. */
import mime from 'mime'
import { fileTypeFromBuffer } from 'file-type'

/** What file-type reads to recognise a format (its documented sample size). */
export const MIME_SNIFF_BYTES = 4100

export async function detectMime (name: string, head: Uint8Array | undefined): Promise<string> {
  const byName = mime.getType(name)
  if (byName != null) return byName
  if (head != null && head.byteLength > 0) {
    const sniffed = await fileTypeFromBuffer(head.subarray(0, MIME_SNIFF_BYTES)).catch(() => undefined)
    if (sniffed != null) return sniffed.mime
  }
  return 'application/octet-stream'
}
