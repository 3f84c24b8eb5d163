/**
 * A process whose wall clock is off (libfaketime, Debian's `faketime`), for
 * clock-skew tests of real node processes. The monotonic clock stays true, as
 * it does on a host whose wall clock was set wrong. If the library is missing
 * and we are root, install it with apt-get; otherwise the tests skip.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'

/** Why skewed-clock tests cannot run here, or undefined. */
export function faketimeUnavailable (): string | undefined {
  if (existsSync(LIBFAKETIME)) return undefined
  if (process.getuid?.() !== 0) return `${LIBFAKETIME} is missing and we are not root: install it with "apt-get install -y faketime"`
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  for (const cmds of [[['install', '-y', 'faketime']], [['update'], ['install', '-y', 'faketime']]]) {
    try {
      for (const args of cmds) execFileSync('apt-get', args, { env, stdio: 'ignore', timeout: 300_000 })
      if (existsSync(LIBFAKETIME)) return undefined
    } catch {}
  }
  return 'could not install faketime with apt-get (no package repository reachable?)'
}

/** Environment for a process whose wall clock runs `offset` off ("+5m", "-300s"). */
export function skewedClockEnv (offset: string): Record<string, string> {
  return { LD_PRELOAD: LIBFAKETIME, FAKETIME: offset, DONT_FAKE_MONOTONIC: '1', FAKETIME_DONT_RESET: '1' }
}
