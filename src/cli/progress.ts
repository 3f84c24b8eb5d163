/** A byte progress bar on stderr, only when stderr is a terminal (scripts get clean output). */
import cliProgress from 'cli-progress'
import { formatBytes } from './format.ts'

export interface Progress {
  add(bytes: number): void
  stop(): void
}

export function byteProgress (label: string, total: number | undefined): Progress {
  if (process.stderr.isTTY !== true) return { add: () => {}, stop: () => {} }
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {percentage}% {done}/{size} {speed}/s eta {eta_formatted}`,
    hideCursor: true,
    clearOnComplete: true
  }, cliProgress.Presets.shades_classic)
  const started = Date.now()
  let done = 0
  const payload = (): object => ({
    done: formatBytes(done),
    size: total != null ? formatBytes(total) : '?',
    speed: formatBytes(Math.round(done / Math.max(0.001, (Date.now() - started) / 1000)))
  })
  bar.start(total ?? 0, 0, payload())
  return {
    add: (bytes) => { done += bytes; bar.update(done, payload()) },
    stop: () => { bar.stop() }
  }
}

/** Count bytes flowing through an async iterable. */
export async function * counted<T extends Uint8Array> (source: AsyncIterable<T>, progress: Progress): AsyncGenerator<T> {
  for await (const chunk of source) {
    progress.add(chunk.byteLength)
    yield chunk
  }
}
