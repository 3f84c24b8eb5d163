/**
 * CPU profiles of `bin/dsm node` processes over a window of a benchmark: the
 * node runs with `--inspect=127.0.0.1:0` (NODE_OPTIONS), and the bench talks
 * to its inspector (Chrome DevTools Protocol over WebSocket) to start and stop
 * V8's sampling profiler around exactly the workload it measures — start-up
 * and the other cells stay out of the profile.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { profileTable } from './profile.ts'
import type { ProcNode } from '../test/sim/proc.ts'

/** Environment for a node whose CPU may be profiled. */
export const INSPECT_ENV = { NODE_OPTIONS: '--inspect=127.0.0.1:0' }
const SAMPLING_INTERVAL_US = 200

export class Inspector {
  private readonly ws: WebSocket
  private next = 1
  private readonly waiting = new Map<number, PromiseWithResolvers<unknown>>()

  private constructor (ws: WebSocket) {
    this.ws = ws
    ws.addEventListener('message', (e: MessageEvent) => {
      const m = JSON.parse(String(e.data)) as { id?: number, result?: unknown, error?: { message: string } }
      const w = m.id != null ? this.waiting.get(m.id) : undefined
      if (w == null || m.id == null) return
      this.waiting.delete(m.id)
      if (m.error != null) w.reject(new Error(m.error.message))
      else w.resolve(m.result)
    })
  }

  /** Connect to the inspector a node printed on start-up. */
  static async of (node: ProcNode): Promise<Inspector> {
    const url = /Debugger listening on (ws:\/\/\S+)/.exec(node.output())?.[1]
    if (url == null) throw new Error('the node runs without --inspect (start it with INSPECT_ENV)')
    const ws = new WebSocket(url)
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => { resolve() }, { once: true })
      ws.addEventListener('error', () => { reject(new Error(`cannot reach the inspector at ${url}`)) }, { once: true })
    })
    const inspector = new Inspector(ws)
    await inspector.call('Profiler.enable')
    await inspector.call('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US })
    return inspector
  }

  async call (method: string, params: object = {}): Promise<unknown> {
    const id = this.next++
    const w = Promise.withResolvers<unknown>()
    this.waiting.set(id, w)
    this.ws.send(JSON.stringify({ id, method, params }))
    return w.promise
  }

  async start (): Promise<void> {
    await this.call('Profiler.start')
  }

  /** Stop profiling and write the profile (a .cpuprofile file DevTools opens). */
  async stop (path: string): Promise<void> {
    const { profile } = await this.call('Profiler.stop') as { profile: unknown }
    await writeFile(path, JSON.stringify(profile))
  }

  close (): void {
    this.ws.close()
  }
}

/**
 * Run `work` with every node's CPU profiled (when `dir` is set):
 * `<dir>/<name>-<node>.cpuprofile`, and one table of where it went.
 */
export async function profiled<T extends { count: number }> (dir: string | undefined, inspectors: Inspector[], names: string[], name: string, work: () => Promise<T>): Promise<T> {
  if (dir == null) return work()
  await Promise.all(inspectors.map(async i => i.start()))
  const out = await work()
  const files = inspectors.map((_, i) => join(dir, `${name}-n${i + 1}.cpuprofile`))
  await Promise.all(inspectors.map(async (ins, i) => ins.stop(files[i] ?? '')))
  profileTable(`where the CPU of ${name} went (${out.count} operations; share · CPU ms per operation)`, files.map((file, i) => ({ name: names[i] ?? `n${i + 1}`, file, ops: out.count })))
  return out
}
