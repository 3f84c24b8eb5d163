/**
 * libp2p's own debug logger, only when asked for. libp2p makes a logger per
 * component and per stream, and each one checks the terminal as it is made
 * (isatty): ~1 % of a node's CPU under many small uploads, for output nobody
 * reads. With DEBUG naming libp2p (DEBUG=libp2p:*), the real one is used.
 */
import { defaultLogger } from '@libp2p/logger'
import type { ComponentLogger, Logger } from '@libp2p/interface'

/** A logger that drops everything. */
export function silentLibp2pLogger (): ComponentLogger {
  const log: Logger = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false, newScope: () => log })
  return { forComponent: () => log }
}

/** The real logger when DEBUG asks for libp2p's output, else the silent one. */
export function libp2pLogger (env: NodeJS.ProcessEnv = process.env): ComponentLogger {
  return /libp2p/.test(env.DEBUG ?? '') ? defaultLogger() : silentLibp2pLogger()
}
