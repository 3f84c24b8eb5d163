/**
 * The HTTP side of a node (Fastify). Routes live in ./routes; this file owns
 * listening, JSON errors (`{ code, message }`) and shutdown.
 */
import Fastify from 'fastify'
import { HTTP_CLOSE_GRACE_MS } from '../constants.ts'
import { AddressInUseError, DsmError } from '../errors.ts'
import { statusOf } from './errors.ts'
import type { HttpAddress } from '../node/config.ts'
import type { FastifyInstance } from 'fastify'

export type RouteRegistrar = (app: FastifyInstance) => void

export interface HttpServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: HttpAddress
  readonly url: string
  close(): Promise<void>
}

export async function startHttpServer (at: HttpAddress, routes: RouteRegistrar[]): Promise<HttpServer> {
  const app = Fastify({
    logger: false,
    // Uploads are streamed, not parsed: the body limit applies to JSON bodies only.
    bodyLimit: 1024 * 1024,
    forceCloseConnections: true,
    return503OnClosing: true
  })
  app.setErrorHandler((thrown, _req, reply) => {
    const err = thrown instanceof Error ? thrown : new Error(String(thrown))
    const status = statusOf(err)
    const code = err instanceof DsmError ? err.code : status === 400 ? 'ERR_BAD_REQUEST' : status === 413 ? 'ERR_MESSAGE_TOO_LARGE' : 'ERR_INTERNAL'
    const message = status >= 500 && !(err instanceof DsmError) ? `internal error: ${err.message}` : err.message
    void reply.status(status).type('application/json').send({ code, message })
  })
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
