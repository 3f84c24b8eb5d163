/**
 * What Chromium's threads were busy with over a window (`--tab-trace` of the
 * HLS bench): its trace (categories `toplevel`, `v8`, `blink`, `media`,
 * `webrtc`) folded into busy ms per process and thread, and the longest kinds
 * of task. The sampling profiler sees only the tab's own main thread, and
 * charges it for time it waited for a core; the trace shows who else ran.
 */
export const TRACE_CATEGORIES = ['toplevel', 'v8', 'blink', 'media', 'webrtc', 'disabled-by-default-devtools.timeline']

interface TraceEvent { ph: string, name: string, pid: number, tid: number, ts: number, dur?: number, cat?: string, args?: { name?: string, src_func?: string, src_file?: string } }

/** Busy ms per "process · thread" (top-level tasks only) and per task kind, largest first. */
export function foldTrace (json: string, top = 6): { threads: Array<[string, number]>, tasks: Array<[string, number]> } {
  const events = (JSON.parse(json) as { traceEvents: TraceEvent[] }).traceEvents
  const proc = new Map<number, string>()
  const thread = new Map<string, string>()
  for (const e of events) {
    if (e.ph !== 'M') continue
    if (e.name === 'process_name') proc.set(e.pid, e.args?.name ?? String(e.pid))
    if (e.name === 'thread_name') thread.set(`${e.pid}:${e.tid}`, e.args?.name ?? String(e.tid))
  }
  const byThread = new Map<string, number>()
  const byTask = new Map<string, number>()
  for (const e of events) {
    // Top-level tasks: what a thread's run loop ran (nested events would count twice).
    if (e.ph !== 'X' || e.dur == null || e.cat !== 'toplevel') continue
    const where = `${proc.get(e.pid) ?? e.pid} ${e.pid} · ${thread.get(`${e.pid}:${e.tid}`) ?? e.tid}`
    byThread.set(where, (byThread.get(where) ?? 0) + e.dur / 1000)
    const what = `${where.replace(/ \d+ ·/, ' ·')} · ${e.args?.src_func ?? e.name}`
    byTask.set(what, (byTask.get(what) ?? 0) + e.dur / 1000)
  }
  const sorted = (m: Map<string, number>): Array<[string, number]> => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
  return { threads: sorted(byThread), tasks: sorted(byTask) }
}
