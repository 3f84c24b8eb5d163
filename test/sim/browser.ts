/**
 * Headless Chromium for browser tests: Debian's `chromium` driven by
 * playwright-core (never a browser download). If it is missing and we are
 * root, install it with apt-get; otherwise the tests skip with the reason.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import type { Browser } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
export const MEDIA_DIR = join(import.meta.dirname, '..', '..', '..', 'shared', 'media')
export const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic', '--autoplay-policy=no-user-gesture-required',
  // WebRTC between tabs on one host: offer real host candidates (not mDNS names) and allow loopback.
  '--disable-features=WebRtcHideLocalIpsWithMdns', '--allow-loopback-in-peer-connection'
]

/** Returns why browser tests cannot run here, or undefined when Chromium is ready. */
export function chromiumUnavailable (): string | undefined {
  if (existsSync(CHROMIUM)) return undefined
  if (process.getuid?.() !== 0) return `${CHROMIUM} is missing and we are not root: install it with "apt-get install -y chromium"`
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  for (const cmds of [[['install', '-y', 'chromium']], [['update'], ['install', '-y', 'chromium']]]) {
    try {
      for (const args of cmds) execFileSync('apt-get', args, { env, stdio: 'ignore', timeout: 300_000 })
      if (existsSync(CHROMIUM)) return undefined
    } catch {}
  }
  return 'could not install chromium with apt-get (no package repository reachable?)'
}

export function mediaUnavailable (): string | undefined {
  return existsSync(join(MEDIA_DIR, 'sample-30s.mp4')) ? undefined : `test media not found at ${MEDIA_DIR}`
}

export async function launchChromium (): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS })
}
