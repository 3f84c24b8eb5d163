/**
 * Fuzzing the HTTP API of a running node: random requests, raw requests with odd framing, malformed HTTP.
 *
 * Fuzzing (fast-check, one fixed seed, bounded runs): every wire decoder and
 * the HTTP surface fed random and mutated input. The properties: no crash, no
 * hang, no unbounded memory, and a clean, named error each time; the HTTP API
 * never answers 500 for client input, every error answer is `{ code, message }`
 * with the status its code maps to, the node stays up and its data dir gains
 * no stray files.
 *
 * Every bug these properties found is fixed; its shrunk counterexample stays
 * pinned in `examples` (and described in a comment marked REGRESSION), so the
 * bug cannot come back unnoticed.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { toString as toHex } from 'uint8arrays/to-string'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DsmError } from '../../src/errors.ts'
import { statusOf } from '../../src/http/errors.ts'
import { validateFileName } from '../../src/content/names.ts'
import { putRemote } from '../../src/replica/put.ts'
import * as messages from '../../src/wire/messages.ts'
import { randomBytes, sha256hex, upload } from '../helpers/data.ts'
import { concat, rawHttp, runs } from '../helpers/fuzz.ts'
import { modelRange, rangeHeaderArb } from '../helpers/range-model.ts'
import { createSimCluster } from '../sim/cluster.ts'
import type { SimCluster } from '../sim/cluster.ts'

/** Which status each error code must come with (src/http/errors.ts is the reference). */
function statusOfCode (code: string): number {
  const err = new DsmError('x')
  err.code = code
  return statusOf(err)
}

const ERROR_CODE = /^ERR_[A-Z0-9_]+$/

/** Problems with one answer (an empty list when it is fine). */
function answerProblems (method: string, status: number | undefined, contentType: string | undefined, body: Uint8Array): string[] {
  if (status == null) return []
  const problems: string[] = []
  if (status === 500) problems.push('500 for client input')
  // 503 / 504 / 507 say "not now" or "no room"; any other 5xx for client input to a healthy cluster is a bug.
  else if (status >= 501 && ![503, 504, 507].includes(status)) problems.push(`${status} for client input`)
  if (status < 100 || status > 599) problems.push(`status ${status}`)
  if (status >= 400 && method !== 'HEAD') {
    const text = new TextDecoder().decode(body)
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { problems.push(`non-JSON error body: ${JSON.stringify(text.slice(0, 120))}`) }
    if (!/^application\/json/.test(contentType ?? '')) problems.push(`error Content-Type ${String(contentType)}`)
    if (parsed != null) {
      const { code, message } = parsed as { code?: unknown, message?: unknown }
      if (typeof code !== 'string' || !ERROR_CODE.test(code) || typeof message !== 'string') problems.push(`error body is not { code: "ERR_…", message }: ${text.slice(0, 160)}`)
      else if (statusOfCode(code) !== status) problems.push(`status ${status} does not match code ${code} (→ ${statusOfCode(code)})`)
    }
  }
  return problems
}

/**
 * Bugs found by the HTTP properties below: each has its own failing test with
 * the minimal request; the broad properties skip exactly these answers so
 * they keep looking for other bugs.
 */
const KNOWN_HTTP_BUGS: Array<{ name: string, matches: (problems: string[], body: string, target: string) => boolean }> = [
  // Empty: every bug these properties found is fixed, and pinned by its own regression test below.
]

function unknownProblems (problems: string[], body: Uint8Array, target: string): string[] {
  const text = new TextDecoder().decode(body)
  return problems.length > 0 && KNOWN_HTTP_BUGS.some(b => b.matches(problems, text, target)) ? [] : problems
}

describe('fuzz: the HTTP API of a running node', () => {
  let c: SimCluster
  const data = randomBytes(300_001, 4242)
  let id = ''
  let etag = ''
  let lastModified = ''
  let spareId = ''
  const url = (i: number): string => c.node(i).http?.url ?? ''
  const port = (i: number): number => c.node(i).http?.address.port ?? 0

  beforeAll(async () => {
    // g1 = node 0 holds the file, g2 = node 1 does not (it reads it from node 0). Small chunks: several per file.
    c = await createSimCluster({ nodes: 2, http: true, configure: (i) => ({ group: i === 0 ? 'g1' : 'g2', chunkSize: 128 * 1024 }) })
    await c.ready()
    await c.waitFor(() => [0, 1].every(i => c.node(i).membership.view.members().filter(m => m.state === 'ACTIVE').length === 2), { message: 'both ACTIVE everywhere' })
    const res = await upload(url(1), data, 'movie.mp4', { group: 'g1' })
    expect(res.status).toBe(201)
    id = res.body.id as string
    const head = await fetch(`${url(0)}/files/${id}`, { method: 'HEAD' })
    etag = head.headers.get('etag') ?? ''
    lastModified = head.headers.get('last-modified') ?? ''
    spareId = (await upload(url(0), randomBytes(1000, 77), 'spare.bin', { group: 'g2' })).body.id as string
  }, 60_000)
  afterAll(async () => { await c?.close() })

  it('Range / If-Range / If-None-Match / If-Modified-Since on GET and HEAD, from a holder and a non-holder: the RFC 9110 answer, exact bytes', async () => {
    const size = data.byteLength
    const createdSec = Date.parse(lastModified)
    const arb = fc.record({
      node: fc.constantFrom(0, 1),
      method: fc.constantFrom('GET', 'GET', 'HEAD'),
      range: fc.option(rangeHeaderArb(size, { hugeNumbers: false, ascii: true }), { freq: 6 }),
      ifRange: fc.option(fc.constantFrom(etag, lastModified, `W/${etag}`, '"other"', 'garbage', new Date(0).toUTCString()), { freq: 3 }),
      ifNoneMatch: fc.option(fc.constantFrom(etag, '*', `W/${etag}`, '"x"', `"x", ${etag}`, `"x",W/${etag}`), { freq: 6 }),
      ifModifiedSince: fc.option(fc.constantFrom(lastModified, 'garbage', new Date(createdSec + 10_000).toUTCString(), new Date(createdSec - 10_000).toUTCString()), { freq: 6 }),
      download: fc.boolean()
    })
    await fc.assert(fc.asyncProperty(arb, async (r) => {
      const headers: Record<string, string> = {}
      if (r.range != null) headers.range = r.range
      if (r.ifRange != null) headers['if-range'] = r.ifRange
      if (r.ifNoneMatch != null) headers['if-none-match'] = r.ifNoneMatch
      if (r.ifModifiedSince != null) headers['if-modified-since'] = r.ifModifiedSince
      const res = await fetch(`${url(r.node)}/files/${id}${r.download ? '?download=1' : ''}`, { method: r.method, headers })
      const body = new Uint8Array(await res.arrayBuffer())
      // Reference (RFC 9110 §13.1.2, §13.1.3, §13.1.5, §14).
      const inm = r.ifNoneMatch?.split(',').map(t => t.trim().replace(/^W\//, ''))
      const notModified = inm != null ? inm.includes('*') || inm.includes(etag) : r.ifModifiedSince != null && Date.parse(r.ifModifiedSince) >= createdSec
      let decision = modelRange(r.range ?? undefined, size)
      if (decision.kind !== 'full' && r.ifRange != null && r.ifRange !== etag && r.ifRange !== lastModified) decision = { kind: 'full' }
      const expectedStatus = notModified ? 304 : { full: 200, unsatisfiable: 416, partial: 206 }[decision.kind]
      expect(res.status).toBe(expectedStatus)
      expect(answerProblems(r.method, res.status, res.headers.get('content-type') ?? undefined, body)).toEqual([])
      if (res.status === 304) return
      if (r.method === 'HEAD') expect(body.byteLength).toBe(0)
      if (decision.kind === 'unsatisfiable') { expect(res.headers.get('content-range')).toBe(`bytes */${size}`); return }
      const length = Number(res.headers.get('content-length'))
      if (r.method === 'GET') expect(body.byteLength).toBe(length)
      if (decision.kind === 'full') {
        expect(length).toBe(size)
        if (r.method === 'GET') expect(sha256hex(body)).toBe(sha256hex(data))
        return
      }
      const ranges = decision.ranges
      if (ranges.length === 1) {
        const [only] = ranges as [{ start: number, end: number }]
        expect(res.headers.get('content-range')).toBe(`bytes ${only.start}-${only.end}/${size}`)
        expect(length).toBe(only.end - only.start + 1)
        if (r.method === 'GET') expect(sha256hex(body)).toBe(sha256hex(data.subarray(only.start, only.end + 1)))
        return
      }
      const boundary = /boundary=([^;]+)/.exec(res.headers.get('content-type') ?? '')?.[1] ?? ''
      expect(boundary).not.toBe('')
      if (r.method === 'HEAD') return
      // Parse the multipart body: each part's Content-Range and bytes.
      const text = Buffer.from(body).toString('latin1')
      const parts = text.split(`\r\n--${boundary}`).slice(1)
      expect(parts.at(-1)).toBe('--\r\n')
      expect(parts.length - 1).toBe(ranges.length)
      for (const [i, part] of parts.slice(0, -1).entries()) {
        const range = ranges[i] as { start: number, end: number }
        const split = part.indexOf('\r\n\r\n')
        expect(part.slice(0, split)).toContain(`Content-Range: bytes ${range.start}-${range.end}/${size}`)
        expect(sha256hex(Buffer.from(part.slice(split + 4), 'latin1'))).toBe(sha256hex(data.subarray(range.start, range.end + 1)))
      }
    }), runs(400))
  })

  // Random requests (fetch sends only well-formed HTTP): methods, paths, query strings, headers, bodies.
  const segmentArb = (ids: () => string[]): fc.Arbitrary<string> => fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom('files', 'files', 'api', 'ui', 'healthz', 'id', 'peers', 'groups', '', '%2e%2e', '%2E%2E', '%2f', '%00', '%', '%zz', '%c0%af', '%ED%A0%80', '%FF',
        '..%2f..%2fetc%2fpasswd', 'app.js', 'style.css', 'index.html', '%C3%A9', '%F0%9F%98%80', ';', 'a;b=c', '*', '~', 'dsm.db', 'peer.key', 'chunks', 'tmp')
    },
    { weight: 2, arbitrary: fc.constant(null).map(() => ids()[0] ?? '') },
    { weight: 1, arbitrary: fc.constant(null).map(() => ids()[1] ?? '') },
    { weight: 1, arbitrary: fc.constant('bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku') }, // a valid ID of nothing stored
    { weight: 2, arbitrary: fc.string({ maxLength: 16 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.string({ maxLength: 8, unit: 'grapheme' }) },
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 6000 }).map(n => 'a'.repeat(n)) }
  )
  /** Mostly the real routes, with an odd last segment; sometimes anything. */
  const pathArb = (ids: () => string[]): fc.Arbitrary<string> => fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('/files', '/files', '/files/', '/api/files', '/healthz', '/api/id', '/api/peers', '/api/groups', '/', '/ui/app.js') },
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom('/files/', '/files/', '/api/files/', '/ui/'), segmentArb(ids)).map(([a, b]) => a + b) },
    { weight: 2, arbitrary: fc.array(segmentArb(ids), { minLength: 1, maxLength: 4 }).map(s => `/${s.join('/')}`) }
  )
  const queryValueArb = fc.oneof(
    fc.constantFrom('', 'movie.mp4', 'a b.mp4', '..', '.', 'a%2Fb', '%2e%2e', '%00', '%', '%zz', '%ED%A0%80', '%C3%A9t%C3%A9.mkv', 'all', '0', '1', '2', '65', '99', '-1', '1.5',
      'g1', 'g2', 'g3', '..%2Fg1', 'nope', '%0D%0AX-Injected:%201', 'x'.repeat(300)),
    fc.string({ maxLength: 20 }).map(encodeURIComponent),
    fc.string({ maxLength: 10, unit: 'binary' }).map(s => { try { return encodeURIComponent(s) } catch { return '%ED%A0%80' } })
  )
  const queryArb = fc.array(fc.tuple(fc.constantFrom('name', 'name', 'group', 'quorum', 'download', 'x', 'name[]', '__proto__'), queryValueArb), { maxLength: 4 })
    .map(q => q.length === 0 ? '' : `?${q.map(([k, v]) => `${k}=${v}`).join('&')}`)
  const headerValueArb = fc.oneof(
    fc.constantFrom('bytes=0-0', 'bytes=-1', 'bytes=5-2', 'bytes=0-0,2-3', 'bytes=999999999-', 'items=0-1', '*', '"x"', 'W/"x"', 'garbage',
      'application/json', 'application/octet-stream', 'video/mp4', 'text/plain; charset=utf-8', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'a/b/c', '',
      'attachment; filename="a.mp4"', 'attachment; filename=', 'attachment; filename="../../x"', "attachment; filename*=UTF-8''%E2%82%AC.mp4", "attachment; filename*=UTF-8''%ED%A0%80",
      'attachment; filename="a\\"b"', 'inline', 'attachment;;', 'Thu, 01 Jan 1970 00:00:00 GMT', 'gzip', 'chunked'),
    fc.string({ maxLength: 30, unit: fc.constantFrom(...' !"#$%&\'()*+,-./0123456789:;<=>?@ABCXYZ[\\]^_`abcxyz{|}~\t') })
  )
  const headersArb = fc.dictionary(
    fc.constantFrom('range', 'if-range', 'if-none-match', 'if-modified-since', 'content-type', 'content-disposition', 'accept', 'accept-encoding', 'x-forwarded-for', 'origin'),
    headerValueArb, { maxKeys: 4 })

  it('random requests: never 500, every error a JSON { code, message } with its status, and the node stays up', async () => {
    const ids = (): string[] => [spareId, id]
    const arb = fc.record({
      node: fc.constantFrom(0, 1),
      method: fc.constantFrom('GET', 'GET', 'HEAD', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
      path: pathArb(ids),
      query: queryArb,
      headers: headersArb,
      body: fc.option(fc.uint8Array({ maxLength: 3000 }), { freq: 3 })
    })
    await fc.assert(fc.asyncProperty(arb, async (r) => {
      // Never DELETE the file the other properties read.
      if (r.method === 'DELETE' && r.path.includes(id)) return
      const withBody = r.body != null && r.method !== 'GET' && r.method !== 'HEAD'
      let res: Response
      try {
        res = await fetch(`${url(r.node)}${r.path}${r.query}`, { method: r.method, headers: r.headers, ...(withBody ? { body: r.body as Uint8Array<ArrayBuffer> } : {}), signal: AbortSignal.timeout(15_000) })
      } catch (err) {
        // fetch refused to build the request (e.g. a header value it will not send): not the server's doing.
        if (err instanceof TypeError && (!/fetch failed/.test(err.message) || (err.cause as { code?: string } | undefined)?.code === 'UND_ERR_NOT_SUPPORTED')) return
        throw err
      }
      const body = new Uint8Array(await res.arrayBuffer())
      expect(unknownProblems(answerProblems(r.method, res.status, res.headers.get('content-type') ?? undefined, body), body, r.path + r.query)).toEqual([])
    }), runs(800))
    for (const i of [0, 1]) expect((await fetch(`${url(i)}/healthz`)).status).toBe(200)
  }, 60_000)

  // Raw HTTP/1.1 on a socket: what fetch will not send. Well-formed requests with odd targets, and
  // Content-Length / Transfer-Encoding that do not match the body.
  it('raw requests with odd targets and body framing: never 500, errors as JSON, no hang, the node stays up', async () => {
    const targetArb = fc.oneof(
      pathArb(() => [spareId, id]),
      fc.array(fc.oneof(segmentArb(() => [spareId, id]), fc.constantFrom('..', '.', '', '%2e%2e', '.%2e')), { minLength: 1, maxLength: 5 }).map(s => `/${s.join('/')}`),
      fc.constantFrom('/files/../../../etc/passwd', '/files/..%2f..%2fdsm.db', '//files', '/files//', '/ui/../files', '/ui/..%2f..%2fpackage.json', '/%2e%2e/%2e%2e/',
        '/files?name=a&name=b', '/files/?name=', '/healthz?', '/healthz#x', '*', 'http://x/healthz', '/files/%ff%fe')
    )
    const arb = fc.record({
      node: fc.constantFrom(0, 1),
      method: fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'PROPFIND'),
      target: targetArb,
      query: queryArb,
      headers: fc.array(fc.tuple(fc.constantFrom('Range', 'Content-Type', 'Content-Disposition', 'If-None-Match', 'If-Range', 'Accept', 'X-Any'), headerValueArb.filter(v => v.trim() === v)), { maxLength: 3 }),
      framing: fc.constantFrom('none', 'exact', 'exact', 'short', 'long', 'huge', 'chunked', 'chunked-bad', 'negative', 'letters'),
      body: fc.uint8Array({ maxLength: 2000 })
    })
    await fc.assert(fc.asyncProperty(arb, async (r) => {
      if (r.method === 'DELETE' && r.target.includes(id)) return
      const target = r.target.includes('?') || r.target.startsWith('http') || r.target === '*' ? r.target : r.target + r.query
      const lines = [`${r.method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...r.headers.map(([k, v]) => `${k}: ${v}`)]
      let body: Uint8Array = r.body
      let endAfterMs: number | undefined
      switch (r.framing) {
        case 'none': body = new Uint8Array(0); break
        case 'exact': lines.push(`Content-Length: ${body.byteLength}`); break
        case 'short': lines.push(`Content-Length: ${body.byteLength + 100}`); endAfterMs = 100; break // the client stops early
        case 'long': lines.push(`Content-Length: ${Math.floor(body.byteLength / 2)}`); break // trailing bytes look like a next request
        case 'huge': lines.push('Content-Length: 1000000000000000'); endAfterMs = 100; break
        case 'chunked': lines.push('Transfer-Encoding: chunked'); body = concat([new TextEncoder().encode(`${body.byteLength.toString(16)}\r\n`), body, new TextEncoder().encode(body.byteLength > 0 ? '\r\n0\r\n\r\n' : '\r\n')]); break
        case 'chunked-bad': lines.push('Transfer-Encoding: chunked'); body = concat([new TextEncoder().encode('zz\r\n'), body]); break
        case 'negative': lines.push('Content-Length: -1'); break
        case 'letters': lines.push('Content-Length: 12abc'); break
      }
      const request = concat([new TextEncoder().encode(`${lines.join('\r\n')}\r\n\r\n`), body])
      const answer = await rawHttp(port(r.node), request, { timeoutMs: 5000, ...(endAfterMs != null ? { endAfterMs } : {}) })
      const problems = unknownProblems(answerProblems(r.method, answer.status, answer.headers['content-type'], answer.body), answer.body, target)
      expect(problems, `${answer.raw.subarray(0, 300).toString('latin1')}`).toEqual([])
      // A request that framed its body completely always gets an answer.
      if (['none', 'exact', 'chunked'].includes(r.framing)) expect(answer.status, answer.raw.toString('latin1')).toBeDefined()
    }), runs(500))
    for (const i of [0, 1]) expect((await fetch(`${url(i)}/healthz`)).status).toBe(200)
  }, 60_000)

  it('malformed HTTP (bad method, request line, header syntax): a 4xx or a close, never a 500, and the node stays up', async () => {
    const arb = fc.record({
      node: fc.constantFrom(0, 1),
      request: fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc.tuple(fc.constantFrom('GET', 'FOO', 'G ET', '', 'get', 'GET\u0000', 'CONNECT'), fc.constantFrom('/healthz', '/files/ x', '/\u0001', '/\u00ff', 'healthz', ''), fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1x', 'HTTPS/1.1', ''),
          fc.array(fc.constantFrom('Host: x', 'Bad Header: 1', ': empty', 'X-A:\u0000', 'X-Long: ' + 'a'.repeat(20_000), ' folded', 'Content-Length: 1', 'Content-Length: 2', 'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip, chunked'), { maxLength: 4 }))
          .map(([m, t, v, hs]) => new TextEncoder().encode(`${m} ${t} ${v}\r\n${hs.join('\r\n')}\r\n\r\n`))
      )
    })
    await fc.assert(fc.asyncProperty(arb, async ({ node, request }) => {
      const answer = await rawHttp(port(node), request, { timeoutMs: 5000, endAfterMs: 200 })
      if (answer.status != null) {
        expect(answer.status).not.toBe(500)
        expect(answer.status < 500 || answer.status === 503).toBe(true)
      }
    }), runs(120))
    for (const i of [0, 1]) expect((await fetch(`${url(i)}/healthz`)).status).toBe(200)
  }, 60_000)

  // REGRESSION (fixed; was: src/http/server.ts): answers that Fastify produces itself bypass the `{ code, message }` error
  // handler: an HTTP parse error (clientErrorHandler: `{"error":"Bad Request","message":"Client Error","statusCode":400}`,
  // no code), a percent-encoding that does not decode in a route parameter, a route parameter longer than
  // find-my-way's maxParamLength (100), and an unsupported media type on a body-parsing route
  // (`{"statusCode":4xx,"code":"FST_ERR_…","error":…,"message":…}`). Minimal repros (any node):
  //   "FOO / HTTP/1.1\r\n\r\n"                            → 400 {"error":"Bad Request","message":"Client Error","statusCode":400}
  //   GET /files/%zz                                       → 400 {"statusCode":400,"code":"FST_ERR_BAD_URL",…}
  //   GET /files/<101 × "a">                               → 414 {"statusCode":414,"code":"FST_ERR_…",…}
  //   DELETE /files/x with Content-Type: application/x-foo and a body → 415 {"code":"FST_ERR_CTP_INVALID_MEDIA_TYPE",…}
  // Fix: Fastify({ clientErrorHandler, frameworkErrors, maxParamLength }) writing `{ code: 'ERR_BAD_REQUEST' | …, message }`
  // (frameworkErrors receives FST_ERR_BAD_URL and the max-param-length error), and map a Fastify error's
  // 4xx statusCode to an ERR_ code in setErrorHandler (415 → ERR_BAD_REQUEST or a new ERR_UNSUPPORTED_MEDIA_TYPE
  // listed in STATUS_BY_CODE) instead of "ERR_INTERNAL".
  it.each([
    ['an HTTP parse error (unknown method)', 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a route parameter that does not percent-decode', 'GET /files/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
    ['a route parameter longer than 100 characters', `GET /files/${'a'.repeat(101)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`],
    ['an unsupported Content-Type on DELETE', 'DELETE /files/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-foo\r\nContent-Length: 2\r\n\r\n{}']
  ])('%s answers a JSON { code: "ERR_…", message } error whose status matches its code', async (_what, request) => {
    const answer = await rawHttp(port(0), new TextEncoder().encode(request), { timeoutMs: 5000 })
    expect(answer.status).toBeDefined()
    expect(answerProblems('GET', answer.status, answer.headers['content-type'], answer.body)).toEqual([])
  })

  // REGRESSION (fixed; was: src/http/routes/files.ts, uploadRequest): the query string parser turns a repeated parameter
  // into an array, and `q.name` is used as a string: validateFileName passes it (its checks coerce the
  // array to "a,b"), and the client gets a 5xx for its own bad request: 502 ERR_INVALID_MANIFEST when
  // this node coordinates (createManifest refuses the array), 503 ERR_UNAVAILABLE when another node does
  // (encodeMessage refuses the put header, and putRemote reports that as "the coordinator failed").
  // Found by the raw-request property; minimal repro:
  //   POST /files?name=a&name=b (any body)  → 502 {"code":"ERR_INVALID_MANIFEST","message":"name: Invalid input: expected string, received array"}
  // (?group=a&group=b and ?quorum=1&quorum=2 are refused, but only by luck of String(array).)
  // Likewise ?quorum= passes /^[1-9]\d?$/ up to 99 while PutHeaderSchema stops at 64: through a node that
  // is not in the group, POST /files?name=a&group=g1&quorum=65 → 503 ERR_UNAVAILABLE "the coordinator …
  // failed during the upload (refusing to send an invalid message: quorum: Too big…)".
  // Fix: refuse non-string query values up front (a Fastify querystring schema with type string for
  // name / group / quorum / download, or `typeof q.name !== 'string'` → BadRequestError), check quorum
  // against QuorumSchema, and in putRemote let an InvalidMessageError of our own header through as is
  // (it is not the coordinator failing).
  it.each([
    ['a repeated ?name=', 0, '/files?name=a&name=b'],
    ['a ?quorum= above 64, through a node outside the group', 1, '/files?name=a&group=g1&quorum=65']
  ])('%s is a 400, not a 5xx', async (_what, node, path) => {
    const res = await fetch(`${url(node)}${path}`, { method: 'POST', body: new Uint8Array([1, 2, 3]) })
    const body = new Uint8Array(await res.arrayBuffer())
    expect(answerProblems('POST', res.status, res.headers.get('content-type') ?? undefined, body)).toEqual([])
    expect(res.status, new TextDecoder().decode(body)).toBe(400)
  })

  // What a peer (any libp2p peer that connects: there is no authentication) can send on /dsm/put.
  const hostileName = fc.oneof(
    fc.constantFrom('a\r\nX-Injected: 1', 'a\nb', 'a\u0000b', '\u00e9t\u00e9.mp4', '../../etc/passwd', '/etc/cron.d/x', 'a/b', '..', '"quoted"', 'a\\b', '\ud800', '\u2028', ' ', '%41', 'x'.repeat(256), 'x'.repeat(1024)),
    fc.string({ minLength: 1, maxLength: 20, unit: 'binary' })
  )
  const hostileMime = fc.oneof(
    fc.constantFrom('video/mp4', 'text/plain\r\nX-Injected: 1', 'text/html', 'a', 'x/y; q="\u00ff"', 'a\u0000b', '\ud800/x', ' ', 'text/plain; charset=utf-8'),
    fc.string({ minLength: 1, maxLength: 20, unit: 'binary' })
  )
  let putCount = 0
  async function putViaWire (name: string, mime: string | undefined): Promise<messages.UploadResult | Error> {
    return putRemote(c.node(1).libp2p, c.peerId(0), { group: 'g1', name, quorum: 'all', ...(mime != null ? { mime } : {}) }, (async function * () { yield randomBytes(600, 5000 + putCount++) })())
      .catch((err: Error) => err)
  }

  // REGRESSION (fixed; was: src/replica/put.ts servePut → service.coordinate → ingest): the naming rules (1–255 UTF-8 bytes,
  // no "/", "\\" or control characters; src/content/names.ts) are checked only in ReplicaService.upload,
  // the HTTP entry; a file put over /dsm/put (PutHeaderSchema: any 1–1024 chars) is stored with any name.
  // The CLI then writes `dsm download ID` (on a terminal) to the name from Content-Disposition, so a peer
  // can plant a file that is written to "../../x" or "/etc/cron.d/x" (a new path outside the working dir).
  // Shrunk: name "\u0000" (also "a/b", "../../etc/passwd", 1024 × "x") → stored, GET /api/files/ID shows it.
  // Fix: validateFileName(header.name) in ingest() (the coordinator, whoever called it), and refuse such
  // names in manifests received by replicate / sync; in the CLI, write to basename(name) only.
  it('a name sent on /dsm/put follows the naming rules once stored', async () => {
    await fc.assert(fc.asyncProperty(hostileName, async (name) => {
      const result = await putViaWire(name, undefined)
      if (result instanceof Error) return // refused by the coordinator: fine
      // Whatever was stored, serving it with its name must not break.
      const res = await fetch(`${url(0)}/files/${result.id}?download=1`)
      const got = new Uint8Array(await res.arrayBuffer())
      expect(answerProblems('GET', res.status, res.headers.get('content-type') ?? undefined, got), JSON.stringify(name)).toEqual([])
      const stat = await (await fetch(`${url(1)}/api/files/${result.id}`)).json() as { name: string }
      expect(() => validateFileName(stat.name), JSON.stringify(name)).not.toThrow()
    }), { ...runs(30), examples: [['\u0000'], ['../../etc/passwd']] })
  }, 60_000)

  // REGRESSION (fixed; was: src/replica/put.ts / ingest: PutHeaderSchema.mime is any 1–255 chars; src/http/routes/files.ts
  // serveFile: reply.type(manifest.mime)): a type with a control character sent on /dsm/put is stored,
  // then every GET / HEAD of the file answers 500 ("Invalid character in header content
  // [\"content-type\"]"), and in a multipart/byteranges answer (Range: bytes=0-0,2-3) the type is written
  // into the body as is: "text/plain\r\nX-Injected: 1" injects a part header. Shrunk: mime "\u0000" → GET
  // 500. Fix: validate mime on the put path as the HTTP upload does (/^[\w.+-]+\/[\w.+-]+$/, or a full
  // RFC 9110 media-type with parameters), and refuse other types in manifests from peers (decodeManifest).
  it('a type sent on /dsm/put cannot break or inject into GET answers', async () => {
    await fc.assert(fc.asyncProperty(hostileMime, async (mime) => {
      const result = await putViaWire('file.bin', mime)
      if (result instanceof Error) return
      for (const node of [0, 1]) {
        for (const [query, range] of [['?download=1', undefined], ['', 'bytes=0-0,2-3']] as const) {
          const res = await fetch(`${url(node)}/files/${result.id}${query}`, { headers: range != null ? { range } : {} })
          const got = new Uint8Array(await res.arrayBuffer())
          expect(answerProblems('GET', res.status, res.headers.get('content-type') ?? undefined, got), `mime ${JSON.stringify(mime)}`).toEqual([])
          expect(res.headers.get('x-injected')).toBeNull()
          if (res.status === 206) expect(Buffer.from(got).toString('latin1')).not.toMatch(/\r\nX-Injected/i)
        }
      }
    }), { ...runs(30), examples: [['\u0000'], ['text/plain\r\nX-Injected: 1']] })
  }, 60_000)

  it('afterwards: both nodes answer /healthz, and their data dirs hold no stray chunk or temp file', async () => {
    for (const i of [0, 1]) expect((await fetch(`${url(i)}/healthz`)).status).toBe(200)
    // Failed uploads clean up asynchronously: give them a moment.
    const deadline = Date.now() + 5000
    for (;;) {
      const problems: string[] = []
      for (const i of [0, 1]) {
        const dir = c.config(i).dataDir
        const live = new Set(c.node(i).store.index.liveDigests().map(d => toHex(d, 'base16')))
        const stray = c.node(i).store.chunks.digests().map(d => toHex(d, 'base16')).filter(f => !live.has(f))
        if (stray.length > 0) problems.push(`node ${i}: ${stray.length} stored chunk(s) no file refers to`)
        if (c.node(i).store.prepared.size > 0) problems.push(`node ${i}: ${c.node(i).store.prepared.size} upload(s) undecided`)
        const tmp = await readdir(join(dir, 'tmp')).catch(() => [])
        if (tmp.length > 0) problems.push(`node ${i}: ${tmp.length} file(s) left in tmp/`)
      }
      if (problems.length === 0 || Date.now() > deadline) {
        expect(problems).toEqual([])
        break
      }
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  })
})
