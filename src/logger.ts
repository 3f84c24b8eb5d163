/**
 * Structured logs (JSON lines on stderr, via pino) with levels. Every node gets
 * its own logger carrying its peer id, so logs of an in-process cluster stay
 * readable; stdout stays free for command output.
 */
import { pino } from 'pino'

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export interface Logger {
  error(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  debug(obj: object, msg?: string): void
  child(bindings: Record<string, unknown>): Logger
}

export function createLogger (level: LogLevel, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: bindings }, pino.destination({ dest: 2, sync: true }))
}

/** A logger that drops everything (library use and quiet tests). */
export const silentLogger: Logger = createLogger('silent')
