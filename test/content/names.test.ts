import { describe, expect, it } from 'vitest'
import { fileNameProblem } from '../../src/content/names.ts'

describe('file names', () => {
  it('at most 255 bytes of UTF-8, counted as encoded (a short name is not encoded at all)', () => {
    const cases: Array<[string, boolean]> = [
      ['a'.repeat(255), true], ['a'.repeat(256), false],
      ['é'.repeat(127), true], ['é'.repeat(128), false],
      ['日'.repeat(85), true], ['日'.repeat(86), false],
      ['😀'.repeat(63), true], ['😀'.repeat(64), false],
      // A lone surrogate is encoded as U+FFFD: 3 bytes.
      ['\ud800'.repeat(85), true], ['\ud800'.repeat(86), false]
    ]
    for (const [name, ok] of cases) expect(fileNameProblem(name) == null, `${name.length} units of ${name.slice(0, 1)}`).toBe(ok)
  })

  it('refuses empty names, separators, control characters and dot names', () => {
    for (const bad of ['', 'a/b', 'a\\b', 'a\u0000', 'tab\there', '.', '..']) expect(fileNameProblem(bad)).toBeDefined()
    expect(fileNameProblem('clip (1).mp4')).toBeUndefined()
  })
})
