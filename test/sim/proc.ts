/**
 * Real `bin/dsm node` processes on 127.0.0.1 over TCP, for tests across OS
 * processes. Ports are chosen by the OS (0) and read back from the node's output.
 */
import { spawn } from 'node:child_process'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { watchOutput } from '../helpers/leaks.ts'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'

export const DSM_BIN = join(import.meta.dirname, '..', '..', 'bin', 'dsm')
const run = promisify(execFile)

export interface ProcNode {
  proc: ChildProcessWithoutNullStreams
  url: string
  peerId: string
  /** libp2p address with /p2p/<peer id>, for --bootstrap. */
  addr: string
  output: () => string
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export interface ProcNodeInit {
  dataDir: string
  bootstrap?: string[]
  args?: string[]
  env?: Record<string, string>
  /** Fixed ports (e.g. for a restart at the same address); 0 = any. */
  tcpPort?: number
  httpPort?: number
}

/** The cluster secret every test node shares (a node started without it is a stranger to them). */
export const TEST_SECRET = 'dsm-test-cluster-secret-0123456789abcdef'
/** Fast heartbeats so process tests converge in seconds. */
// Open (no token for writes): the security tests cover the token; these cover everything else.
export const FAST_ENV = { DSM_HEARTBEAT_INTERVAL_MS: '300', DSM_OFFLINE_AFTER_MS: '1200', DSM_LOG_LEVEL: 'warn', DSM_OPEN: '1', DSM_SECRET: TEST_SECRET, DSM_S3: 'off' }

export async function startProcNode (init: ProcNodeInit): Promise<ProcNode> {
  return superviseNode(DSM_BIN, [...nodeArgs(init, '127.0.0.1', 0)], { ...FAST_ENV, ...init.env }, { ip: '127.0.0.1', label: 'dsm node', startTimeoutMs: 20_000 })
}

/** `dsm node` arguments for a node listening on `ip` (ports 0 = any, unless fixed by `init`). */
export function nodeArgs (init: ProcNodeInit, ip: string, defaultPort: number, httpDefaultPort = defaultPort): string[] {
  return ['node', '--data', init.dataDir, '--listen', `/ip4/${ip}/tcp/${init.tcpPort ?? defaultPort}`, '--http', `${ip}:${init.httpPort ?? httpDefaultPort}`,
    ...(init.bootstrap != null && init.bootstrap.length > 0 ? ['--bootstrap', ...init.bootstrap] : []), ...(init.args ?? [])]
}

export interface SuperviseOptions {
  /** The address the node announces its libp2p listener on. */
  ip: string
  /** Names the node in errors. */
  label: string
  startTimeoutMs: number
}

/** Spawn a node process and wait until it printed its HTTP and libp2p addresses (or failed). */
export async function superviseNode (command: string, args: string[], env: Record<string, string>, opts: SuperviseOptions): Promise<ProcNode> {
  const proc = spawn(command, args, { env: { ...process.env, ...env } })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { out += d.toString() })
  watchOutput(`${opts.label} ${args.join(' ').slice(0, 80)}`, () => out)
  const exited = once(proc, 'exit').then(([code]) => code as number | null)
  const addrRe = new RegExp(`libp2p\\s+(/ip4/${opts.ip.replaceAll('.', '\\.')}/tcp/\\d+/p2p/(\\w+))`)
  let timer: ReturnType<typeof setTimeout> | undefined
  const started = await Promise.race([
    new Promise<{ url: string, addr: string, peerId: string }>((resolve) => {
      const check = (): void => {
        const url = /http\s+(http:\/\/\S+)/.exec(out)?.[1]
        const addr = addrRe.exec(out)
        if (url != null && addr?.[1] != null && addr[2] != null) {
          proc.stdout.off('data', check)
          resolve({ url, addr: addr[1], peerId: addr[2] })
        }
      }
      proc.stdout.on('data', check)
    }),
    exited.then(code => { throw new Error(`${opts.label} exited with ${code} before starting:\n${out}`) }),
    new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${opts.label} did not start in ${opts.startTimeoutMs / 1000} s:\n${out}`)) }, opts.startTimeoutMs) })
  ]).finally(() => { clearTimeout(timer) })
  return {
    proc,
    ...started,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode == null && proc.signalCode == null) proc.kill(signal)
      return exited
    }
  }
}

/** Run the CLI (`bin/dsm ...`) and return its exit code and output. */
export async function dsm (args: string[], env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await run(DSM_BIN, args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

/** Retry `fn` until it returns a value passing `ok`, or fail after `timeoutMs`. */
export async function eventually<T> (fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T | undefined
  let lastErr: unknown
  while (Date.now() < deadline) {
    try {
      last = await fn()
      if (ok(last)) return last
    } catch (err) { lastErr = err }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)?.slice(0, 500)}; last error: ${String(lastErr)}`)
}
