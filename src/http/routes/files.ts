/**
 * Files over HTTP: upload (POST /files), the streaming gateway
 * (GET|HEAD /files/:id with Range, conditional requests and
 * multipart/byteranges), metadata (GET /api/files/:id), listing
 * (GET /api/files) and delete (DELETE /files/:id). Any node serves any file.
 */
import { started } from '../../util/started.ts'
import { sendBody } from '../send-body.ts'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { create as contentDisposition, parse as parseContentDisposition } from 'content-disposition'
import { BadRequestError } from '../../errors.ts'
import { HTTP_BODY_IDLE_TIMEOUT_MS, idleLimitedBody } from '../limits.ts'
import { parseRange } from '../../util/range.ts'
import { parseFileId } from '../../content/manifest.ts'
import { z } from 'zod'
import type { HttpAuth } from '../auth.ts'
import type { ByteRange } from '../../util/range.ts'
import type { FileListing } from '../../replica/list.ts'
import type { Located } from '../../dht/locate.ts'
import type { UploadRequest } from '../../replica/service.ts'
import type { FileStat } from '../../replica/stat.ts'
import { QuorumSchema, groupName } from '../../wire/messages.ts'
import type { DeleteResult, Quorum, UploadResult } from '../../wire/messages.ts'
import type { RouteRegistrar } from '../server.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { FastifyReply, FastifyRequest } from 'fastify'

const SignRequestSchema = z.object({ id: z.string().max(256), ttl: z.number().int().optional() }).strict()

/** An upload as HTTP asks for it: the file, and whether to make an HLS ladder of it. */
export interface FileUpload extends UploadRequest {
  hls?: boolean
}

export interface FilesApi {
  upload(req: FileUpload, source: AsyncIterable<Uint8Array>, options: AbortOptions): Promise<UploadResult>
  open(id: string, options: AbortOptions): Promise<Located>
  /** `recycled`: every piece is given back through `recycle` once the response's write of it completed. */
  read(located: Located, offset: number, length: number, options: AbortOptions & { recycled?: boolean }): AsyncIterable<Uint8Array>
  /** Done with a piece of a `recycled` read (its buffer may be reused). */
  recycle(bytes: Uint8Array): void
  /** A small range of a file this node holds, in one read; undefined when that does not apply (then `read`). */
  readSmall(located: Located, offset: number, length: number): Promise<Uint8Array | undefined>
  stat(id: string, options: AbortOptions): Promise<FileStat>
  delete(id: string, options: AbortOptions): Promise<DeleteResult>
  list(options: AbortOptions): Promise<FileListing[]>
}

/** Aborts when the client goes away before the response is complete. */
export function clientSignal (req: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  reply.raw.once('close', () => { if (!reply.raw.writableFinished) controller.abort(new Error('client went away')) })
  req.raw.once('aborted', () => { controller.abort(new Error('client aborted the request')) })
  return controller.signal
}

/** A query parameter given at most once (`?a=1&a=2` is a client error, not a list). */
export function single (q: Record<string, unknown>, key: string): string | undefined {
  const v = q[key]
  if (v === undefined || typeof v === 'string') return v
  throw new BadRequestError(`query parameter "${key}" must be given once`)
}

function uploadRequest (req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>): FileUpload {
  const q = {
    hls: single(req.query, 'hls'),
    name: single(req.query, 'name'),
    group: single(req.query, 'group'),
    quorum: single(req.query, 'quorum')
  }
  let name = q.name
  const disposition = req.headers['content-disposition']
  if (name == null && disposition != null) {
    try {
      name = parseContentDisposition(disposition).parameters.filename
    } catch {
      throw new BadRequestError('malformed Content-Disposition header')
    }
  }
  const length = req.headers['content-length']
  const size = length != null ? Number(length) : undefined
  if (size != null && !Number.isSafeInteger(size)) throw new BadRequestError('malformed Content-Length')
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase()
  const mime = type != null && type !== '' && type !== 'application/octet-stream' && /^[\w.+-]+\/[\w.+-]+$/.test(type) ? type : undefined
  let quorum: Quorum | undefined
  if (q.quorum != null) {
    const parsed = QuorumSchema.safeParse(q.quorum === 'all' ? 'all' : /^\d{1,3}$/.test(q.quorum) ? Number(q.quorum) : q.quorum)
    if (!parsed.success) throw new BadRequestError('quorum must be "all" or a number of copies from 1 to 64')
    quorum = parsed.data
  }
  if (q.group != null && !groupName.safeParse(q.group).success) throw new BadRequestError(`"${q.group.slice(0, 64)}" is not a group name`)
  if (q.hls != null && !['0', '1', 'true', 'false'].includes(q.hls)) throw new BadRequestError('hls must be 1 (make an HLS ladder of the video) or 0')
  return {
    ...(q.hls === '1' || q.hls === 'true' ? { hls: true } : {}),
    name: name ?? '',
    ...(mime != null ? { mime } : {}),
    ...(size != null ? { size } : {}),
    ...(q.group != null ? { group: q.group } : {}),
    ...(quorum != null ? { quorum } : {})
  }
}

function etagMatches (header: string | undefined, etag: string): boolean {
  if (header == null) return false
  if (header.trim() === '*') return true
  // Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x".
  return header.split(',').map(t => t.trim().replace(/^W\//, '')).includes(etag)
}

function httpDate (ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toUTCString()
}

async function * multipart (api: Pick<FilesApi, 'read'>, located: Located, ranges: ByteRange[], boundary: string, options: AbortOptions): AsyncGenerator<Uint8Array> {
  const enc = new TextEncoder()
  const { size, mime } = located.manifest
  for (const r of ranges) {
    yield enc.encode(`\r\n--${boundary}\r\nContent-Type: ${mime}\r\nContent-Range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`)
    yield * api.read(located, r.start, r.end - r.start + 1, options)
  }
  yield enc.encode(`\r\n--${boundary}--\r\n`)
}

function multipartLength (ranges: ByteRange[], boundary: string, mime: string, size: number): number {
  const enc = new TextEncoder()
  let n = enc.encode(`\r\n--${boundary}--\r\n`).byteLength
  for (const r of ranges) {
    n += enc.encode(`\r\n--${boundary}\r\nContent-Type: ${mime}\r\nContent-Range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`).byteLength + r.end - r.start + 1
  }
  return n
}

async function serveFile (api: FilesApi, auth: HttpAuth, req: FastifyRequest<{ Params: { id: string }, Querystring: Record<string, string | undefined> }>, reply: FastifyReply): Promise<unknown> {
  auth.checkDownload(parseFileId(req.params.id).toString(), { expires: single(req.query, 'expires'), sig: single(req.query, 'sig') }, req.headers.authorization)
  return sendFile(api, req.params.id, req, reply)
}

/** A file's bytes as GET/HEAD asked (Range, conditional requests): the caller checked the client may read it. */
export async function sendFile (api: Pick<FilesApi, 'open' | 'read' | 'recycle' | 'readSmall'>, id: string, req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply: FastifyReply): Promise<unknown> {
  const signal = clientSignal(req, reply)
  const located = await api.open(id, { signal })
  const { manifest } = located
  const etag = `"${manifest.id.toString()}"`
  void reply.header('ETag', etag)
    .header('Last-Modified', httpDate(located.createdAt))
    .header('Accept-Ranges', 'bytes')
    .header('Cache-Control', 'public, max-age=31536000, immutable')
    .header('X-Dsm-Group', located.group)
  if (single(req.query, 'download') === '1') void reply.header('Content-Disposition', contentDisposition(manifest.name))
  const h = req.headers
  const notModified = h['if-none-match'] != null
    ? etagMatches(h['if-none-match'], etag)
    : h['if-modified-since'] != null && Date.parse(h['if-modified-since']) >= Math.floor(located.createdAt / 1000) * 1000
  if (notModified) return reply.status(304).send()
  let decision = parseRange(h.range, manifest.size)
  const ifRange = h['if-range']
  if (decision.kind !== 'full' && ifRange != null && ifRange !== etag && ifRange !== httpDate(located.createdAt)) decision = { kind: 'full' }
  const head = req.method === 'HEAD'
  if (decision.kind === 'unsatisfiable') {
    return reply.status(416).header('Content-Range', `bytes */${manifest.size}`)
      .send({ code: 'ERR_RANGE_NOT_SATISFIABLE', message: `no satisfiable range in "${h.range ?? ''}" for ${manifest.size} bytes` })
  }
  const body = (it: AsyncIterable<Uint8Array>): Readable => Readable.from(it, { objectMode: false, highWaterMark: 4 * 1024 * 1024 })
  // The first bytes before the status line: a read that cannot start (no replica answers) is a clean 503.
  const read = async (offset: number, length: number): Promise<AsyncIterable<Uint8Array>> => started(api.read(located, offset, length, { signal, recycled: true }))
  if (decision.kind === 'full') {
    const bytes = head ? undefined : await read(0, manifest.size)
    void reply.type(manifest.mime).header('Content-Length', manifest.size)
    if (bytes == null) return reply.status(200).send()
    await sendBody(reply, 200, bytes, (b) => { api.recycle(b) }, signal)
    return reply
  }
  const [only] = decision.ranges
  if (decision.ranges.length === 1 && only != null) {
    const length = only.end - only.start + 1
    void reply.type(manifest.mime).header('Content-Range', `bytes ${only.start}-${only.end}/${manifest.size}`).header('Content-Length', length)
    if (head) return reply.status(206).send()
    // A seek on a holder: one read, no streaming pipeline (most of a small Range's time to first byte).
    const small = await api.readSmall(located, only.start, length)
    if (small != null) return reply.status(206).send(small)
    const bytes = await read(only.start, length)
    await sendBody(reply, 206, bytes, (b) => { api.recycle(b) }, signal)
    return reply
  }
  const boundary = randomBytes(12).toString('hex')
  void reply.status(206).type(`multipart/byteranges; boundary=${boundary}`)
    .header('Content-Length', multipartLength(decision.ranges, boundary, manifest.mime, manifest.size))
  return head ? reply.send() : reply.send(body(multipart(api, located, decision.ranges, boundary, { signal })))
}

export function fileRoutes (api: FilesApi, auth: HttpAuth, bodyIdleTimeoutMs = HTTP_BODY_IDLE_TIMEOUT_MS): RouteRegistrar {
  return (app) => {
    // Uploads are streamed as they arrive: no body parser in this scope.
    void app.register(async (scope) => {
      scope.removeAllContentTypeParsers()
      scope.addContentTypeParser('*', (_req, _payload, done) => { done(null) })
      const handler = async (req: FastifyRequest<{ Params: { name?: string }, Querystring: Record<string, string | undefined> }>, reply: FastifyReply): Promise<unknown> => {
        auth.requireToken(req.headers.authorization)
        const signal = clientSignal(req, reply)
        const request = uploadRequest(req)
        // `curl -T video.mp4 http://node/files/` sends PUT /files/video.mp4.
        if (request.name === '' && req.params.name != null) request.name = req.params.name
        // Not destroyed when the upload fails early: the client must still get our error response.
        const body = idleLimitedBody(req.raw.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>, bodyIdleTimeoutMs)
        const result = await api.upload(request, body, { signal })
        return reply.status(201).header('Location', `/files/${result.id}`).send(result)
      }
      scope.post('/files', handler)
      scope.put('/files', handler)
      scope.put('/files/:name', handler)
    })
    app.route<{ Params: { id: string }, Querystring: Record<string, string | undefined> }>({
      method: ['GET', 'HEAD'], url: '/files/:id', handler: async (req, reply) => serveFile(api, auth, req, reply)
    })
    app.get<{ Params: { id: string } }>('/api/files/:id', async (req, reply) => api.stat(req.params.id, { signal: clientSignal(req, reply) }))
    app.get('/api/files', async (req, reply) => api.list({ signal: clientSignal(req, reply) }))
    app.delete<{ Params: { id: string } }>('/files/:id', async (req, reply) => {
      auth.requireToken(req.headers.authorization)
      return api.delete(req.params.id, { signal: clientSignal(req, reply) })
    })
    // A signed, expiring download URL (for --signed-urls nodes): any node sharing the token honours it.
    app.post<{ Body: unknown }>('/api/sign', async (req) => {
      auth.requireToken(req.headers.authorization)
      const body = SignRequestSchema.safeParse(req.body ?? {})
      if (!body.success) throw new BadRequestError('expected JSON {"id": FILE_ID, "ttl": SECONDS}')
      const id = parseFileId(body.data.id).toString()
      return auth.sign(id, body.data.ttl)
    })
  }
}
