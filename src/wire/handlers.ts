/**
 * A protocol's handler, defined beside the module whose protocol it is (as
 * kad-dht keeps one handler per message beside its rpc), and registered by
 * the service that owns those modules as a list: one shape for every
 * protocol, whether it answers one request (./rpc.ts serve) or streams.
 */
import { toError } from '../errors.ts'
import { serve } from './rpc.ts'
import type { Logger } from '../logger.ts'
import type { Registrar, ServeOptions } from './rpc.ts'
import type { AbortOptions, Stream } from '@libp2p/interface'
import type { z } from 'zod'

/** Concurrent transfer streams (put, replicate, get, channel) per connection, each way. */
export const MAX_TRANSFER_STREAMS_PER_PEER = 256

export interface ProtocolHandler {
  readonly protocol: string
  register (registrar: Registrar, logger: Logger): Promise<void>
}

/** One request, one answer (`{ ok }` or `{ error }`), over one stream. */
export function rpcHandler<Req, Res> (
  protocol: string, request: z.ZodType<Req>, response: z.ZodType<Res>,
  handle: (req: Req, remote: string, options: AbortOptions) => Promise<Res>, options: ServeOptions = {}
): ProtocolHandler {
  return {
    protocol,
    register: async (registrar) => serve(registrar, protocol, request, response, async (req, remote, o) => handle(req, remote.toString(), o), options)
  }
}

/** A protocol that streams (frames both ways, for as long as the transfer takes); a failure resets the stream. */
export function streamHandler (protocol: string, handle: (stream: Stream, remote: string) => Promise<void>): ProtocolHandler {
  return {
    protocol,
    register: async (registrar, logger) => {
      await registrar.handle(protocol, (stream, connection) => {
        handle(stream, connection.remotePeer.toString()).catch(err => {
          logger.debug({ err: toError(err).message, protocol }, 'stream handler failed')
          stream.abort(toError(err))
        })
      }, { maxInboundStreams: MAX_TRANSFER_STREAMS_PER_PEER, maxOutboundStreams: MAX_TRANSFER_STREAMS_PER_PEER })
    }
  }
}

/** Register every handler; resolves with the function that unregisters them. */
export async function registerHandlers (registrar: Registrar, logger: Logger, handlers: ProtocolHandler[]): Promise<() => Promise<void>> {
  const done: string[] = []
  const unregister = async (): Promise<void> => { for (const p of done.splice(0)) await registrar.unhandle(p) }
  try {
    for (const h of handlers) {
      await h.register(registrar, logger)
      done.push(h.protocol)
    }
  } catch (err) {
    await unregister()
    throw err
  }
  return unregister
}
