/**
 * System calls of processes while some work runs, counted by `perf stat` on
 * the kernel's syscall tracepoints (Linux, perf with tracepoint access).
 * Unlike CPU time, a count does not move with the host's other load, so it
 * can show a change too small for this machine's run-to-run spread (issue 23).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'

export const SYSCALLS = ['fcntl', 'pwrite64', 'pread64', 'write', 'writev', 'read', 'fdatasync', 'futex', 'epoll_pwait'] as const

/** Counts per process (in `pids` order) of each of SYSCALLS while `work` runs; undefined where perf could not count. */
export async function countSyscalls<T> (pids: Array<number | undefined>, work: () => Promise<T>): Promise<{ result: T, counts: Array<Record<string, number> | undefined> }> {
  const events = SYSCALLS.map(s => `syscalls:sys_enter_${s}`).join(',')
  const perfs = pids.map(pid => pid == null ? undefined : spawn('perf', ['stat', '-x', ',', '-e', events, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] }))
  const outputs = perfs.map(p => {
    let text = ''
    p?.stderr.on('data', (d: Buffer) => { text += d.toString() })
    return () => text
  })
  // perf attaches in a few ms; a count that misses them only undercounts the first uploads.
  await new Promise(resolve => setTimeout(resolve, 200))
  try {
    return { result: await work(), counts: await Promise.all(perfs.map(async (p, i) => p == null ? undefined : stop(p, outputs[i] as () => string))) }
  } finally {
    for (const p of perfs) if (p?.exitCode == null) p?.kill('SIGKILL')
  }
}

async function stop (p: ReturnType<typeof spawn>, text: () => string): Promise<Record<string, number> | undefined> {
  const exited = once(p, 'exit')
  p.kill('SIGINT')
  await exited
  const out: Record<string, number> = {}
  for (const line of text().split('\n')) {
    const [value, , event] = line.split(',')
    const name = /syscalls:sys_enter_(\w+)/.exec(event ?? '')?.[1]
    if (name != null && value != null && /^\d+$/.test(value)) out[name] = Number(value)
  }
  return Object.keys(out).length > 0 ? out : undefined
}
