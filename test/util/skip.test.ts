/** A suite that cannot run skips with its reason on a user's machine, and fails where every suite must run (CI). */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { REQUIRE_ALL_ENV, SKIP_LOG_ENV, skipUnless } from '../helpers/skip.ts'

const saved = { require: process.env[REQUIRE_ALL_ENV], log: process.env[SKIP_LOG_ENV] }
afterEach(() => {
  for (const [name, value] of [[REQUIRE_ALL_ENV, saved.require], [SKIP_LOG_ENV, saved.log]] as const) {
    if (value == null) delete process.env[name]
    else process.env[name] = value
  }
})

describe('skipping a suite', () => {
  it('runs when nothing is missing; skips with the reason, recorded for the summary; fails under DSM_TEST_REQUIRE_ALL=1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsm-skip-'))
    try {
      delete process.env[REQUIRE_ALL_ENV]
      process.env[SKIP_LOG_ENV] = join(dir, 'log')
      expect(skipUnless('browser tests', undefined)).toBe(false)
      expect(skipUnless('browser tests', 'Chromium is not installed')).toBe(true)
      expect(readFileSync(join(dir, 'log'), 'utf8')).toBe('browser tests: Chromium is not installed\n')
      process.env[REQUIRE_ALL_ENV] = '1'
      expect(() => skipUnless('browser tests', 'Chromium is not installed')).toThrow(/cannot run here: Chromium is not installed/)
      expect(skipUnless('browser tests', undefined)).toBe(false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
