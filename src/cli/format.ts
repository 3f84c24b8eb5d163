/** Plain-text output helpers for the CLI. */

/** Left-aligned columns separated by two spaces; header row first. */
export function formatTable (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

export function formatBytes (n: number): string {
  let i = 0
  let v = n
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${UNITS[i]}`
}

export function shortPeerId (id: string): string {
  return id.length > 16 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id
}

/**
 * What a node says when every peer it reached failed the cluster-secret
 * handshake and none proved it: it is in no cluster with them. Said in plain
 * words on the node's terminal and above `dsm groups`, because a node with
 * the wrong secret otherwise looks like a healthy cluster of its own.
 */
export function secretRefusedText (standing: { provenPeers: number, refusedPeers: number }): string | undefined {
  if (standing.provenPeers > 0 || standing.refusedPeers === 0) return undefined
  const n = standing.refusedPeers
  return `WARNING: this node is in no cluster with the ${n} peer${n === 1 ? '' : 's'} it reached: ${n === 1 ? 'it' : 'every one of them'} failed the cluster-secret handshake, and no peer proved this node's secret.\n` +
    'If this node should join their cluster, stop it and start it again with that cluster\'s secret (DSM_SECRET=<secret> or --secret-file <file>).\n' +
    'Until then it neither stores for them nor reads from them.'
}

/** The options every client command takes (withClient in ../main.ts). */
export interface ClientFlags { node: string, token?: string, json?: boolean }

/** A command's answer: JSON with --json, else the text. */
export function printResult (flags: ClientFlags, value: unknown, text: () => string): void {
  process.stdout.write(flags.json === true ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`)
}
