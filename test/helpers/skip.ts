/**
 * Suites that need something from the machine (Chromium, libfaketime,
 * iproute2, root for tmpfs and namespaces) skip where it is missing — on a
 * user's machine, with the reason printed and named again in the run's
 * summary (test/skip-summary.ts). CI sets DSM_TEST_REQUIRE_ALL=1 (.ci/run):
 * there a missing part fails the suite instead, so a green CI has run every
 * test.
 */
import { appendFileSync } from 'node:fs'

export const REQUIRE_ALL_ENV = 'DSM_TEST_REQUIRE_ALL'
export const SKIP_LOG_ENV = 'DSM_TEST_SKIP_LOG'

/** `reason` undefined: run. Otherwise skip (recorded for the summary), or throw where every suite must run. */
export function skipUnless (suite: string, reason: string | undefined): boolean {
  if (reason == null) return false
  if (process.env[REQUIRE_ALL_ENV] === '1') {
    throw new Error(`the ${suite} cannot run here: ${reason} (${REQUIRE_ALL_ENV}=1: every suite must run; .ci/run installs what they need)`)
  }
  console.warn(`skipping the ${suite}: ${reason}`)
  const log = process.env[SKIP_LOG_ENV]
  if (log != null) appendFileSync(log, `${suite}: ${reason}\n`)
  return true
}
