/**
 * What one HTTP client may hold of a node: every connection has a deadline
 * for its headers, a body that stops moving is answered 408 and dropped, an
 * idle keep-alive connection is closed, and connections are capped overall
 * and per client address. Without these, 100 slowloris clients (headers a
 * byte a second) or 2,000 idle sockets stay open for ever.
 */
import { createServer } from 'node:http'
import { RequestTimeoutError } from '../errors.ts'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** The whole request head must arrive within this (slowloris). */
export const HTTP_HEADERS_TIMEOUT_MS = 10_000
/** An upload body that sends nothing for this long is answered 408 and its connection closed. */
export const HTTP_BODY_IDLE_TIMEOUT_MS = 30_000
/**
 * A keep-alive connection with no request for this long is closed. Long, as
 * nginx's 75 s: a client may send its next request on a pooled connection as
 * the node closes it, and that request fails with ECONNRESET (the AWS SDK
 * without retries, both cores busy: 4 runs in 15 failed at Node's 5 s, none
 * in 9 at 30 s). Clients expire pooled sockets a second before the
 * `Keep-Alive: timeout` the node announces, so a long timeout leaves the close
 * to them; idle connections still count against the connection caps.
 */
export const HTTP_KEEP_ALIVE_TIMEOUT_MS = 30_000
/** A connection that moves no byte either way for this long (a client that stopped reading) is closed. */
export const HTTP_SOCKET_IDLE_TIMEOUT_MS = 120_000
/** Open connections a node accepts in all; more are refused at once. */
export const HTTP_MAX_CONNECTIONS = 4096
/** Open connections one client address may hold (a proxy in front counts as one client). */
export const HTTP_MAX_CONNECTIONS_PER_CLIENT = 512
/** How often Node checks the header deadline. */
const DEADLINE_CHECK_INTERVAL_MS = 1_000

export interface HttpLimits {
  headersTimeoutMs: number
  bodyIdleTimeoutMs: number
  keepAliveTimeoutMs: number
  socketIdleTimeoutMs: number
  maxConnections: number
  maxConnectionsPerClient: number
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: HTTP_HEADERS_TIMEOUT_MS,
  bodyIdleTimeoutMs: HTTP_BODY_IDLE_TIMEOUT_MS,
  keepAliveTimeoutMs: HTTP_KEEP_ALIVE_TIMEOUT_MS,
  socketIdleTimeoutMs: HTTP_SOCKET_IDLE_TIMEOUT_MS,
  maxConnections: HTTP_MAX_CONNECTIONS,
  maxConnectionsPerClient: HTTP_MAX_CONNECTIONS_PER_CLIENT
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void

/** A Node HTTP server with the limits applied (for Fastify's serverFactory). */
export function limitedServer (limits: HttpLimits, handler: RequestHandler): Server {
  const server = createServer({
    headersTimeout: limits.headersTimeoutMs,
    // Uploads of any size are fine as long as they move: the body has its own idle deadline.
    requestTimeout: 0,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: DEADLINE_CHECK_INTERVAL_MS
  }, handler)
  server.maxConnections = limits.maxConnections
  server.timeout = limits.socketIdleTimeoutMs
  const perClient = new Map<string, number>()
  server.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress ?? '?'
    const n = (perClient.get(client) ?? 0) + 1
    if (n > limits.maxConnectionsPerClient) {
      socket.destroy()
      return
    }
    perClient.set(client, n)
    socket.once('close', () => {
      const left = (perClient.get(client) ?? 1) - 1
      if (left <= 0) perClient.delete(client)
      else perClient.set(client, left)
    })
  })
  return server
}

/**
 * The body of a request, which fails with RequestTimeoutError (408) when
 * nothing arrives for `idleMs`: a stalled upload frees what it holds.
 */
export async function * idleLimitedBody (body: AsyncIterable<Uint8Array>, idleMs: number): AsyncGenerator<Uint8Array> {
  const it = body[Symbol.asyncIterator]()
  let stalled = false
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const deadline = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          stalled = true
          reject(new RequestTimeoutError(`the request body sent nothing for ${idleMs / 1000} s`))
        }, idleMs)
      })
      const pending = it.next()
      // If the deadline wins, the read still pending must not reject unheard (it ends when the socket closes).
      pending.catch(() => {})
      try {
        const next = await Promise.race([pending, deadline])
        if (next.done === true) return
        yield next.value
      } finally {
        clearTimeout(timer)
      }
    }
  } finally {
    // After a stall a read is still pending, and an async iterator finishes that before any return():
    // awaiting it would wait for the client that stalled. The 408 closes the connection, which ends it.
    if (!stalled) await it.return?.()
  }
}
