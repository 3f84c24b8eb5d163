/**
 * Where a process's CPU went: V8 CPU profiles (`node --cpu-prof`, written by
 * the benchmarks' `--profile` runs) folded into the categories of
 * docs/performance.md — HTTP, hashing, CBOR/zod, framing, yamux, TLS,
 * SQLite, promises/timers/signals, logging, metrics, GC, I/O, and the rest.
 *
 * A sample is charged to the innermost frame of its stack that names a
 * category: native code (`digest`, `writev`, a TLS write) has no script of its
 * own and counts for whoever called it.
 *
 * `npm run bench -- profile <dir|file.cpuprofile>...` prints the table.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { printTable } from './lib.ts'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string }, hitCount?: number, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

/** First match wins: the order puts the specific before the general. */
const RULES: Array<[string, RegExp]> = [
  ['TLS', /@libp2p\/tls|node:_tls|node:tls|node:internal\/tls|node:internal\/js_stream_socket/],
  ['yamux', /yamux/],
  ['noise', /noise|@chainsafe\/libp2p-noise/],
  ['hashing (SHA-256, CRC)', /chunk-hash|content\/sha256|crc32|crc64|node:internal\/crypto\/hash|@noble\/hashes|sha256-js|multiformats\/.*hashes/],
  ['CBOR / zod', /cborg|dag-cbor|\/zod\/|src\/wire\/codec|src\/util\/zod|protons|uint8arrays\/.*varint|protobuf/],
  ['framing (src/wire, lp, uint8arraylist)', /src\/wire\/|it-length-prefixed|uint8arraylist|uint8-varint|it-byte-stream|it-protobuf-stream/],
  ['SQLite', /node:sqlite|src\/store\/db\.ts|src\/store\/file-index|src\/store\/name-index|src\/store\/prepared/],
  ['store (volumes, group commit)', /src\/store\//],
  ['logging', /pino|src\/logger|@libp2p\/logger|\/debug\/|libp2p-logger/],
  ['metrics', /src\/http\/metrics|prom-client|@libp2p\/.*metrics/],
  ['HTTP (parsing, routing, responses)', /node:_http|node:http|node:internal\/http|llhttp|src\/http\//],
  ['libp2p (other)', /@libp2p\/|libp2p\/dist|it-|p-queue|p-event|race-signal|multiformats|@multiformats|progress-events|main-event|weald/],
  ['replica / stream (dsm)', /src\/replica\/|src\/stream\/|src\/content\//],
  ['dsm (other)', /src\//],
  ['promises / timers / signals', /node:internal\/timers|node:timers|abort_controller|node:internal\/event_target|node:events|node:internal\/process\/task_queues|node:internal\/async_hooks/],
  ['sockets and streams (node)', /node:net|node:internal\/stream_base_commons|node:internal\/streams|node:stream|node:internal\/webstreams/],
  ['file I/O (node)', /node:internal\/fs|node:fs/],
  ['node (other)', /^node:/]
]

const SPECIAL: Record<string, string> = {
  '(garbage collector)': 'garbage collection',
  '(program)': 'V8 / native, unattributed',
  '(idle)': 'idle',
  '(root)': 'idle'
}

function own (node: ProfileNode): string | undefined {
  const special = SPECIAL[node.callFrame.functionName]
  if (special != null && node.callFrame.url === '') return special
  const url = node.callFrame.url
  if (url === '') return undefined
  for (const [name, re] of RULES) if (re.test(url)) return name
  return 'other'
}

/** CPU ms per category (idle left out), per charged frame (`category · function file:line`), and the profile's wall time. */
export function categorize (profile: CpuProfile): { byCategory: Map<string, number>, byFrame: Map<string, number>, wallMs: number } {
  const parent = new Map<number, number>()
  const byId = new Map<number, ProfileNode>()
  for (const n of profile.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  /** Per node: its category and the frame it is charged to (itself, or the nearest caller with a script). */
  const charged = new Map<number, { category: string, frame: string }>()
  const chargeOf = (id: number): { category: string, frame: string } => {
    const known = charged.get(id)
    if (known != null) return known
    const node = byId.get(id)
    const up = parent.get(id)
    const mine = node != null ? own(node) : undefined
    const c = mine != null && node != null
      ? { category: mine, frame: `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${(node.callFrame as { lineNumber?: number }).lineNumber ?? 0}` }
      : up != null ? chargeOf(up) : { category: 'native, no caller', frame: node?.callFrame.functionName ?? '?' }
    charged.set(id, c)
    return c
  }
  const byCategory = new Map<string, number>()
  const byFrame = new Map<string, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const c = chargeOf(profile.samples[i] ?? 0)
    if (c.category === 'idle') continue
    const ms = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000
    byCategory.set(c.category, (byCategory.get(c.category) ?? 0) + ms)
    const key = `${c.category} · ${c.frame}`
    byFrame.set(key, (byFrame.get(key) ?? 0) + ms)
  }
  return { byCategory, byFrame, wallMs: (profile.endTime - profile.startTime) / 1000 }
}

function files (paths: string[]): string[] {
  return paths.flatMap(p => statSync(p).isDirectory() ? readdirSync(p).filter(f => f.endsWith('.cpuprofile')).map(f => join(p, f)) : [p])
}

/** One column per profile; `perOp` divides each by the operations it served (CPU ms per operation). */
export function profileTable (title: string, columns: Array<{ name: string, file: string, ops?: number }>): void {
  const cats = columns.map(c => categorize(JSON.parse(readFileSync(c.file, 'utf8')) as CpuProfile).byCategory)
  const names = [...new Set(cats.flatMap(m => [...m.keys()]))]
  const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0)
  names.sort((a, b) => cats.reduce((s, m) => s + (m.get(b) ?? 0), 0) - cats.reduce((s, m) => s + (m.get(a) ?? 0), 0))
  const cell = (m: Map<string, number>, v: number, ops?: number): string => `${(100 * v / Math.max(1e-9, total(m))).toFixed(1)} %${ops != null ? ` · ${(v / ops).toFixed(3)} ms` : ''}`
  printTable(title, ['where', ...columns.map(c => c.name)], [
    ...names.map(n => [n, ...cats.map((m, i) => cell(m, m.get(n) ?? 0, columns[i]?.ops))]),
    ['total CPU', ...cats.map((m, i) => `${total(m).toFixed(0)} ms${columns[i]?.ops != null ? ` · ${(total(m) / (columns[i]?.ops ?? 1)).toFixed(3)} ms/op` : ''}`)]
  ])
}

export async function run (argv: string[]): Promise<void> {
  const list = files(argv.filter(a => !a.startsWith('--')))
  if (list.length === 0) throw new Error('usage: npm run bench -- profile <dir|file.cpuprofile>...')
  profileTable('CPU by category (share of busy time)', list.map(f => ({ name: f.split('/').slice(-2).join('/'), file: f })))
  const top = Number(argv.find(a => a.startsWith('--top='))?.split('=')[1] ?? 0)
  for (const f of top > 0 ? list : []) {
    const { byFrame, byCategory } = categorize(JSON.parse(readFileSync(f, 'utf8')) as CpuProfile)
    const total = [...byCategory.values()].reduce((a, b) => a + b, 0)
    printTable(`${f}: the ${top} frames charged most`, ['frame', 'ms', 'share'],
      [...byFrame.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, v, `${(100 * v / total).toFixed(1)} %`]))
  }
}
