/**
 * A file's body written straight to the response socket, each piece given
 * back (`recycle`) once the socket's write of it completed — so a holder can
 * read its chunks into reusable buffers (util/buffer-pool.ts). fastify's
 * stream path pipes a Readable into the response and never says when a piece
 * is written; here the route takes the response over (`reply.hijack()`,
 * after which fastify's onResponse hooks still run, on 'finish').
 */
import { once } from 'node:events'
import type { FastifyReply } from 'fastify'

/**
 * Send `status`, the headers set on `reply`, then `body`. A body that fails
 * after the status line went out can only cut the response short: the
 * socket is destroyed, so the client sees a truncated body, never a wrong
 * one. Resolves when the response ended or was cut.
 */
export async function sendBody (reply: FastifyReply, status: number, body: AsyncIterable<Uint8Array>, recycle: (bytes: Uint8Array) => void, signal: AbortSignal): Promise<void> {
  reply.hijack()
  const res = reply.raw
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value)
  res.writeHead(status)
  try {
    for await (const bytes of body) {
      // Given back only after a successful write: a failed one may still be referenced by the socket's queue.
      const drained = res.write(bytes, (err) => { if (err == null) recycle(bytes) })
      if (!drained) await once(res, 'drain', { signal })
    }
    res.end()
  } catch (err) {
    // The client went away (signal: nothing to say), or the read failed midway: nothing more can be said on
    // this response but the log can.
    if (!signal.aborted) reply.log.warn({ err }, 'response body cut short')
    res.destroy()
  }
}
