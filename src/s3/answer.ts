/**
 * Writing S3's XML answers: the usual one (status, length, document), and
 * the long one of an operation that streams an object's bytes before it can
 * answer (CompleteMultipartUpload, CopyObject), which S3 starts at once and
 * keeps alive with whitespace so that clients do not time out, putting a
 * late failure in the body.
 */
import { Readable } from 'node:stream'
import { started } from '../util/started.ts'
import { XML_DECLARATION, toS3Error, xml, xmlElement } from './errors.ts'
import type { S3Request } from './context.ts'
import type { OutgoingHttpHeaders } from 'node:http'

export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/'
/** Bodies up to this size are read whole before the answer starts (one write, no stream). */
export const SMALL_BODY_BYTES = 64 * 1024
/** Whitespace every so often while a long operation runs. */
export const KEEP_ALIVE_INTERVAL_MS = 10_000

/** S3's namespace on the root element, as S3 sends it on every answer. */
function withNamespace (body: unknown): unknown {
  return body != null && typeof body === 'object' && !('@_xmlns' in body) ? { '@_xmlns': S3_XMLNS, ...body } : body
}

export function sendXml (req: S3Request, root: string, body: unknown, status = 200): void {
  const text = xml(root, withNamespace(body))
  req.res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': String(Buffer.byteLength(text)) }).end(text)
}

/** Answer 200 at once and `root` with what `work` returns, or S3's Error document in the body if it fails. */
export async function answerLong (req: S3Request, root: string, work: () => Promise<Record<string, unknown>>): Promise<void> {
  req.res.writeHead(200, { 'Content-Type': 'application/xml' })
  req.res.write(XML_DECLARATION)
  const keepAlive = setInterval(() => { req.res.write('\n') }, KEEP_ALIVE_INTERVAL_MS)
  try {
    const body = await work()
    clearInterval(keepAlive)
    req.res.end(xmlElement(root, withNamespace(body)))
  } catch (err) {
    clearInterval(keepAlive)
    // Headers are out: the error goes in the body, as S3 does.
    const e = toS3Error(err)
    req.res.end(xmlElement('Error', { Code: e.code, Message: e.message, RequestId: req.id }))
  }
}

/** Bytes buffered ahead of a slow client per response. */
const BODY_HIGH_WATER_BYTES = 4 * 1024 * 1024

/**
 * Answer `status` with `bytes` as the body: the first bytes before the
 * status line (a read that cannot start is still a clean error), then piped.
 * Not stream.pipeline: it makes an AbortController per call and aborts it at
 * the end, a DOMException per response (2.5 % of a node's CPU under 4 KiB
 * GETs). A client that goes away stops the read (its holds are released).
 */
export async function sendBytes (req: S3Request, status: number, headers: OutgoingHttpHeaders, bytes: AsyncIterable<Uint8Array>, length?: number): Promise<void> {
  const res = req.res
  if (length != null && length <= SMALL_BODY_BYTES) {
    // A small body is read whole and written with the head in one go: no stream to set up and tear down.
    const pieces: Uint8Array[] = []
    for await (const piece of bytes) pieces.push(piece)
    res.writeHead(status, headers).end(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces))
    return
  }
  const source = Readable.from(await started(bytes), { objectMode: false, highWaterMark: BODY_HIGH_WATER_BYTES })
  res.writeHead(status, headers)
  await new Promise<void>((resolve, reject) => {
    source.once('error', (err) => { res.destroy(); reject(err) })
    res.once('close', () => { if (!res.writableFinished) source.destroy(); resolve() })
    source.pipe(res)
  })
}
