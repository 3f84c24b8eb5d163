/**
 * A dependency bug that would kill a node process, patched at the one place
 * it escapes and counted, so that it stays visible (found by the simulation).
 *
 * @libp2p/yamux 8.0.3 (muxer.js onCreateStream) sends a new stream's SYN in a
 * microtask with no try/catch. When the connection's write side closed in
 * between (a connection being closed while a stream opens on it, frequent
 * when hundreds of nodes dial and prune at once), `sendWindowUpdate` throws
 * `StreamStateError: Cannot write to a stream that is closed` out of the
 * microtask: an uncaught exception: the node process dies of it (in the
 * simulation, every node in the process). The patch turns exactly that case (a
 * stream that never sent its SYN, or one the closing connection already
 * closed) into an aborted stream, which its opener sees as a failed dial, as
 * it would on any other closing connection.
 */
import { StreamState, YamuxStream } from '@libp2p/yamux/stream'

let patched = false
let tolerated = 0

/** How many streams hit the race since the patch was applied. */
export function yamuxOpenRaces (): number { return tolerated }

export function tolerateYamuxOpenRace (): void {
  if (patched) return
  patched = true
  const original = YamuxStream.prototype.sendWindowUpdate
  YamuxStream.prototype.sendWindowUpdate = function (this: YamuxStream): void {
    // Not opened yet (its SYN is what failed), or already closed by the connection going down first.
    const state = this.state
    try {
      original.call(this)
    } catch (err) {
      if ((state !== StreamState.Init && state !== StreamState.Finished) || (err as Error).name !== 'StreamStateError') throw err
      tolerated++
      if (state === StreamState.Init) this.abort(err as Error)
    }
  }
}
