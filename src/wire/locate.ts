/**
 * The locate request (`/dsm/locate/1.0.0`): what a peer knows of a file.
 * One place for it — the tracker (dht/locate.ts), `dsm stat` and the
 * browser node ask it the same way: bounded answer size (a manifest), and a
 * default timeout that a caller's own signal shortens but never lifts.
 */
import { frameBytesFor } from './answer.ts'
import { LOCATE_TIMEOUT_MS, MAX_MANIFEST_BYTES } from '../constants.ts'
import { anySignal } from '../util/abort.ts'
import { LocateRequestSchema, LocateResponseSchema, PROTOCOLS } from './messages.ts'
import { request } from './rpc.ts'
import type { LocateResponse } from './messages.ts'
import type { Dialer } from './rpc.ts'
import type { AbortOptions, PeerId } from '@libp2p/interface'

/** Ask `peer` what it knows of file `id` (rejects with the peer's error, or when it does not answer in time). */
export async function askLocate (dialer: Dialer, peer: PeerId, id: string, options: AbortOptions = {}): Promise<LocateResponse> {
  return request(dialer, peer, PROTOCOLS.locate, LocateRequestSchema, { id }, LocateResponseSchema, {
    signal: anySignal(options.signal, AbortSignal.timeout(LOCATE_TIMEOUT_MS)),
    maxResponseBytes: frameBytesFor(MAX_MANIFEST_BYTES)
  })
}
