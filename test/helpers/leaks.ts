/**
 * No leaked file handles: Node warns `Closing file descriptor N on garbage
 * collection` (DEP0137) when a FileHandle is collected unclosed — the mark
 * the volume-rotation race left in a node's log. Every node process the
 * tests start registers its output here, the test process records its own
 * warnings, and the suite's setup (test/hermetic.ts) fails each test file
 * that saw one.
 */
const LEAK = /Closing file descriptor \d+ on garbage collection|DEP0137/

const outputs: Array<{ label: string, output: () => string }> = []
const own: string[] = []
let listening = false

/** Watch a child process's combined output for leak warnings. */
export function watchOutput (label: string, output: () => string): void {
  outputs.push({ label, output })
}

/** Record this process's own leak warnings (once per process). */
export function watchThisProcess (): void {
  if (listening) return
  listening = true
  process.on('warning', (w) => {
    if (LEAK.test(`${w.message} ${(w as Error & { code?: string }).code ?? ''}`)) own.push(`${w.name}: ${w.message}`)
  })
}

/** The leak warnings seen so far (process label and line); forgets them. */
export function takeLeaks (): string[] {
  const found = own.splice(0).map(line => `test process: ${line}`)
  for (const { label, output } of outputs.splice(0)) {
    for (const line of output().split('\n')) if (LEAK.test(line)) found.push(`${label}: ${line.trim()}`)
  }
  return found
}
