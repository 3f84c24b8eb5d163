/**
 * The HTTP side of a node (Fastify). Routes live in ./routes; this file owns
 * listening, JSON errors (`{ code, message }`) and shutdown.
 */
import Fastify from 'fastify'
import { DRAIN_AFTER_ERROR_TIMEOUT_MS } from '../constants.ts'
import { AddressInUseError, DsmError } from '../errors.ts'
import { errorAnswer } from './errors.ts'
import { DEFAULT_HTTP_LIMITS, limitedServer } from './limits.ts'
import type { HttpLimits } from './limits.ts'
import type { FastifyInstance, FastifyReply } from 'fastify'

/** Time a graceful stop waits for open HTTP responses before closing them. */
export const HTTP_CLOSE_GRACE_MS = 2_000

/** Where the HTTP API listens. */
export interface HttpAddress { host: string, port: number }

export type RouteRegistrar = (app: FastifyInstance) => void

/** Every error leaves as JSON `{ code, message }` with the status its code maps to. */
async function sendError (reply: FastifyReply, thrown: unknown): Promise<void> {
  const err = thrown instanceof Error ? thrown : new Error(String(thrown))
  const { status, code } = errorAnswer(err)
  const message = status >= 500 && !(err instanceof DsmError) ? `internal error: ${err.message}` : err.message
  if (status === 401) void reply.header('WWW-Authenticate', 'Bearer realm="dsm"')
  if (status === 408) {
    // The client stalled: answer, then hang up (waiting for the rest of its body is what it wants us to do).
    void reply.header('Connection', 'close')
    reply.raw.once('finish', () => { reply.request.raw.socket?.destroy() })
  } else if (!reply.request.raw.complete) {
    discardRestOfBody(reply)
  }
  await reply.status(status).type('application/json').send({ code, message })
}

/**
 * A refused upload leaves its body unread. Closing at once would make the
 * client's next write fail (EPIPE) before it reads our answer, and leaving
 * the body unread would wedge a keep-alive connection: so discard what the
 * client still sends, for a bounded time, then close if it is still sending.
 */
function discardRestOfBody (reply: FastifyReply): void {
  const req = reply.request.raw
  const timer = setTimeout(() => { req.socket?.destroy() }, DRAIN_AFTER_ERROR_TIMEOUT_MS)
  timer.unref()
  req.once('end', () => { clearTimeout(timer) })
  req.once('close', () => { clearTimeout(timer) })
  req.resume()
}

export interface HttpServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: HttpAddress
  readonly url: string
  close(): Promise<void>
}

export async function startHttpServer (at: HttpAddress, routes: RouteRegistrar[], limits: HttpLimits = DEFAULT_HTTP_LIMITS): Promise<HttpServer> {
  const app = Fastify({
    logger: false,
    // Deadlines for headers and idle sockets, caps on connections (./limits.ts).
    serverFactory: (handler) => limitedServer(limits, handler),
    // Fastify applies these to the server it is given too: the same values.
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionTimeout: limits.socketIdleTimeoutMs,
    requestTimeout: 0,
    // Uploads are streamed, not parsed: the body limit applies to JSON bodies only.
    bodyLimit: 1024 * 1024,
    forceCloseConnections: true,
    return503OnClosing: true,
    // Errors Fastify meets before a route runs (bad URL encoding, over-long parameters) answer like any other.
    frameworkErrors: (err, _req, reply) => { sendError(reply, err).catch(() => { reply.raw.destroy() }) },
    // A request Node cannot even parse (unknown method, broken framing): still a JSON error.
    clientErrorHandler: (err, socket) => {
      if (!socket.writable) { socket.destroy(); return }
      const code = (err as { code?: string }).code
      // Headers that did not arrive in time (slowloris): 408, like a stalled body.
      const timedOut = code === 'ERR_HTTP_REQUEST_TIMEOUT'
      const body = JSON.stringify(timedOut
        ? { code: 'ERR_REQUEST_TIMEOUT', message: 'the request headers did not arrive in time' }
        : { code: 'ERR_BAD_REQUEST', message: `malformed HTTP request (${code ?? err.message})` })
      socket.end(`HTTP/1.1 ${timedOut ? '408 Request Timeout' : '400 Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
    }
  })
  // An answer that cannot even be sent (the client is gone) ends the connection.
  app.setErrorHandler((thrown, _req, reply) => { sendError(reply, thrown).catch(() => { reply.raw.destroy() }) })
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ code: 'ERR_NOT_FOUND', message: `no route for ${req.method} ${req.url.split('?')[0] ?? ''}` })
  })
  for (const register of routes) register(app)
  try {
    await app.listen({ host: at.host, port: at.port })
  } catch (err) {
    await app.close()
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new AddressInUseError(`HTTP address ${at.host}:${at.port} is already in use (another dsm node?); pick another with --http HOST:PORT`)
    }
    throw err
  }
  const bound = app.server.address()
  const port = typeof bound === 'object' && bound != null ? bound.port : at.port
  const host = at.host.includes(':') ? `[${at.host}]` : at.host
  return {
    address: { host: at.host, port },
    url: `http://${host}:${port}`,
    close: async () => {
      const timer = setTimeout(() => { app.server.closeAllConnections() }, HTTP_CLOSE_GRACE_MS)
      try { await app.close() } finally { clearTimeout(timer) }
    }
  }
}
