/**
 * Building blocks of test/fuzz.test.ts: fast-check arbitraries for hostile
 * bytes (mutations of valid input, CBOR of the wrong shape, huge lengths,
 * deep nesting), a real libp2p MessageStream driven by hand, and a raw HTTP
 * client for requests `fetch` refuses to send.
 */
import { connect } from 'node:net'
import { logger } from '@libp2p/logger'
import { AbstractMessageStream } from '@libp2p/utils'
import { encode as cborEncode } from 'cborg'
import fc from 'fast-check'
import type { SendResult } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'

/** One seed for every property: a failure reproduces exactly (fast-check prints the path to shrink from). */
export const FUZZ_SEED = 0x5eed_d5a

export function runs (numRuns: number): fc.Parameters<unknown> {
  return { seed: FUZZ_SEED, numRuns, endOnFailure: false }
}

// ---- bytes -----------------------------------------------------------------

export type Mutation =
  | { kind: 'flip', at: number, bit: number }
  | { kind: 'set', at: number, byte: number }
  | { kind: 'truncate', at: number }
  | { kind: 'extend', bytes: Uint8Array }
  | { kind: 'insert', at: number, bytes: Uint8Array }
  | { kind: 'delete', at: number, length: number }
  | { kind: 'duplicate', at: number, length: number }

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.constantFrom(0x00, 0xff, 0x18, 0x19, 0x1a, 0x1b, 0x5b, 0x7b, 0x9b, 0xbb, 0x9f, 0xbf, 0xf7, 0xf9, 0xfb, 0xc0, 0xd8) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) })
)

export function mutate (input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let b: Uint8Array = Uint8Array.from(input)
  for (const m of mutations) {
    const at = (n: number): number => b.byteLength === 0 ? 0 : n % b.byteLength
    switch (m.kind) {
      case 'flip': if (b.byteLength > 0) b[at(m.at)]! ^= 1 << m.bit; break
      case 'set': if (b.byteLength > 0) b[at(m.at)] = m.byte; break
      case 'truncate': b = b.slice(0, at(m.at)); break
      case 'extend': b = concat([b, m.bytes]); break
      case 'insert': { const i = at(m.at); b = concat([b.subarray(0, i), m.bytes, b.subarray(i)]); break }
      case 'delete': { const i = at(m.at); b = concat([b.subarray(0, i), b.subarray(i + m.length)]); break }
      case 'duplicate': { const i = at(m.at); b = concat([b.subarray(0, i + m.length), b.subarray(i)]); break }
    }
  }
  return b
}

export function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}

/** Valid bytes, then 1–4 mutations. */
export function mutatedBytes (valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.array(mutationArb, { minLength: 1, maxLength: 4 }).map(ms => mutate(valid, ms))
}

// ---- CBOR --------------------------------------------------------------------

/** Hand-made CBOR heads that claim huge lengths, nest deeply or use what strict decoding refuses. */
export const hostileCborArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  // A head with an 8-, 4-, 2- or 1-byte argument for every major type, followed by a few bytes.
  fc.tuple(fc.integer({ min: 0, max: 7 }), fc.constantFrom(24, 25, 26, 27, 28, 31), fc.uint8Array({ minLength: 0, maxLength: 8 }), fc.uint8Array({ maxLength: 8 }))
    .map(([major, info, arg, rest]) => concat([new Uint8Array([(major << 5) | info]), arg, rest])),
  // Length heads near 2^32 and 2^53 (arrays, maps, byte and text strings).
  fc.tuple(fc.constantFrom(0x5b, 0x7b, 0x9b, 0xbb, 0x5a, 0x7a, 0x9a, 0xba), fc.constantFrom(0xff, 0x7f, 0x00, 0x20, 0x01))
    .map(([head, fill]) => new Uint8Array([head, ...new Uint8Array(head & 1 ? 8 : 4).fill(fill)])),
  // Deep nesting: arrays, maps, tags or indefinite arrays, up to 200 000 levels.
  fc.tuple(fc.constantFrom([0x81], [0xa1, 0x60], [0xc6], [0x9f], [0xd8, 0x2a]), fc.integer({ min: 1, max: 200_000 }), fc.constantFrom([0xa0], [0xf6], [], [0xff]))
    .map(([open, depth, inner]) => {
      const out = new Uint8Array(open.length * depth + inner.length)
      for (let i = 0; i < depth; i++) out.set(open, i * open.length)
      out.set(inner, open.length * depth)
      return out
    }),
  // Simple values and floats strict mode refuses: undefined, NaN, ±Infinity, half floats, break codes.
  fc.constantFrom(
    [0xf7], [0xf9, 0x7e, 0x00], [0xf9, 0x7c, 0x00], [0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], [0xff], [0xf8, 0x20], [0xa1, 0xf6, 0xf6],
    [0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02], [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    [0x62, 0xc3, 0x28], [0x7f, 0x61, 0x61, 0xff], [0x5f, 0x41, 0x00, 0xff], [0xbf, 0x61, 0x61, 0x01, 0xff]
  ).map(b => new Uint8Array(b))
)

/** Keys worth trying in a map: the fields dsm uses, prototype names, odd strings. */
export function keyArb (fields: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...fields, '__proto__', 'constructor', 'prototype', 'toString', ''), weight: 3 },
    { arbitrary: fc.string({ maxLength: 8 }), weight: 1 }
  )
}

/** Any value cborg can encode: the right shape, the wrong shape, and the edges of each type. */
export function cborValueArb (fields: string[]): fc.Arbitrary<unknown> {
  const leaf = fc.oneof(
    fc.constant(null), fc.boolean(), fc.integer(), fc.maxSafeInteger(), fc.maxSafeNat(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(-1, 0, 1, 0.5, -0.5, 2 ** 31, 2 ** 32, 2 ** 53 - 1, -(2 ** 53) + 1, 1e300, 64, 65, 10_000, 10_001),
    fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 10 }),
    fc.constantFrom('', 'all', 'ACTIVE', 'OFFLINE', 'g1', '-g', 'present', 'delete', 'add', 'x'.repeat(129), 'a/b', '12D3KooW'),
    fc.uint8Array({ maxLength: 40 }), fc.constant(new Uint8Array(32))
  )
  const { value } = fc.letrec<{ value: unknown }>(tie => ({
    value: fc.oneof({ depthSize: 'small', maxDepth: 4 },
      leaf,
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(keyArb(fields), tie('value'), { maxKeys: 4 })
    )
  }))
  return value
}

/** Every [path, value] of a plain value tree (objects and arrays), the root first. */
function paths (v: unknown, at: Array<string | number> = []): Array<Array<string | number>> {
  const out = [at]
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])))
  else if (v != null && typeof v === 'object' && !(v instanceof Uint8Array)) for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]))
  return out
}

function fieldNames (v: unknown, into = new Set<string>()): Set<string> {
  for (const p of paths(v)) for (const k of p) if (typeof k === 'string') into.add(k)
  return into
}

export type ValueEdit = { op: 'replace' | 'delete' | 'add', pick: number, key: string, value: unknown }

function clone (v: unknown): unknown {
  if (v instanceof Uint8Array) return Uint8Array.from(v)
  if (Array.isArray(v)) return v.map(clone)
  if (v != null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]))
  return v
}

export function applyEdits (valid: unknown, edits: ValueEdit[]): unknown {
  let root = clone(valid)
  for (const e of edits) {
    const all = paths(root)
    const path = all[e.pick % all.length] ?? []
    if (path.length === 0) {
      if (e.op === 'replace') root = e.value
      else if (e.op === 'add' && root != null && typeof root === 'object' && !(root instanceof Uint8Array)) Object.defineProperty(root, e.key, { value: e.value, enumerable: true, configurable: true, writable: true })
      continue
    }
    let parent = root as Record<string | number, unknown>
    for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>
    const last = path.at(-1) as string | number
    if (e.op === 'replace') parent[last] = e.value
    else if (e.op === 'delete') { if (Array.isArray(parent)) parent.splice(last as number, 1); else delete parent[last] } else if (!Array.isArray(parent)) Object.defineProperty(parent, e.key, { value: e.value, enumerable: true, configurable: true, writable: true })
  }
  return root
}

/**
 * Input for a decoder whose valid messages look like `samples`: random bytes,
 * a valid message with its bytes mutated, a valid message with fields
 * replaced / dropped / added (wrong types, edge values) re-encoded, both at
 * once, or hostile CBOR.
 */
export function decoderInputArb (samples: unknown[]): fc.Arbitrary<Uint8Array> {
  const fields = [...samples.reduce<Set<string>>((s, v) => fieldNames(v, s), new Set())]
  const encoded = samples.map(s => cborEncode(s))
  const edit: fc.Arbitrary<ValueEdit> = fc.record({
    op: fc.constantFrom('replace' as const, 'delete' as const, 'add' as const), pick: fc.nat(), key: keyArb(fields), value: cborValueArb(fields)
  })
  const edited = fc.tuple(fc.constantFrom(...samples), fc.array(edit, { minLength: 1, maxLength: 3 }))
    .map(([s, edits]) => tryEncode(applyEdits(s, edits)))
  return fc.oneof(
    fc.uint8Array({ maxLength: 256 }),
    fc.constantFrom(...encoded).chain(mutatedBytes),
    edited,
    edited.chain(mutatedBytes),
    cborValueArb(fields).map(tryEncode),
    hostileCborArb,
    fc.tuple(fc.constantFrom(...encoded), hostileCborArb, fc.nat()).map(([b, h, at]) => {
      const i = b.byteLength === 0 ? 0 : at % b.byteLength
      return concat([b.subarray(0, i), h, b.subarray(i)])
    })
  )
}

function tryEncode (v: unknown): Uint8Array {
  try { return cborEncode(v) } catch { return new Uint8Array([0xf7]) }
}

// ---- a MessageStream driven by hand -------------------------------------------

/**
 * The real @libp2p/utils AbstractMessageStream (the base of yamux streams):
 * the test plays the remote side with onData / onRemoteCloseWrite /
 * onRemoteReset / onTransportClosed, and pausing buffers incoming data as a
 * paused yamux stream does.
 */
export class HandStream extends AbstractMessageStream {
  pauses = 0
  resumes = 0
  abortedWith?: Error

  constructor () {
    super({ log: logger('dsm:fuzz:stream') })
  }

  sendData (data: Uint8ArrayList): SendResult { return { sentBytes: data.byteLength, canSendMore: true } }
  sendReset (err: Error): void { this.abortedWith = err }
  sendPause (): void { this.pauses++ }
  sendResume (): void { this.resumes++ }
  async close (): Promise<void> {}
}

/** Unsigned LEB128, as uint8-varint writes it. */
export function varint (n: number): Uint8Array {
  const out: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0)
  return new Uint8Array(out)
}

// ---- raw HTTP ----------------------------------------------------------------

export interface RawAnswer {
  /** Undefined when the server closed without answering. */
  status?: number
  headers: Record<string, string>
  body: Buffer
  /** The whole answer as received. */
  raw: Buffer
}

/**
 * Send `request` bytes as they are on a fresh TCP connection and collect
 * what comes back until one answer is complete, the server closes, or
 * `timeoutMs` passes. Parses the first answer only. The client does not
 * half-close (Node's HTTP server drops a request whose client did, unless
 * it answered already), except after `endAfterMs`: a client that stops
 * sending mid-body.
 */
export async function rawHttp (port: number, request: Uint8Array, options: { timeoutMs?: number, endAfterMs?: number } = {}): Promise<RawAnswer> {
  const chunks: Buffer[] = []
  await new Promise<void>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    const finish = (): void => { clearTimeout(timer); socket.destroy(); resolve() }
    const timer = setTimeout(finish, options.timeoutMs ?? 3000)
    socket.on('data', (d: Buffer) => {
      chunks.push(d)
      // One complete answer is enough (the server may keep the connection open).
      if (complete(Buffer.concat(chunks))) finish()
    })
    socket.on('error', finish)
    socket.on('close', finish)
    socket.on('connect', () => {
      socket.write(request)
      if (options.endAfterMs != null) setTimeout(() => socket.end(), options.endAfterMs)
    })
  })
  return parseAnswer(Buffer.concat(chunks))
}

function complete (raw: Buffer): boolean {
  const end = raw.indexOf('\r\n\r\n')
  if (end === -1) return false
  const head = raw.subarray(0, end).toString('latin1')
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
  if (length != null) return raw.byteLength - end - 4 >= Number(length[1])
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) return raw.subarray(end).includes('\r\n0\r\n\r\n')
  return /^HTTP\/1\.1 (1\d\d|204|304)/.test(head)
}

function parseAnswer (raw: Buffer): RawAnswer {
  const end = raw.indexOf('\r\n\r\n')
  if (end === -1) return { headers: {}, body: Buffer.alloc(0), raw }
  const [statusLine = '', ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n')
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  let body = raw.subarray(end + 4)
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body)
  else if (headers['content-length'] != null) body = body.subarray(0, Number(headers['content-length']))
  return { ...(status != null ? { status: Number(status[1]) } : {}), headers, body, raw }
}

function dechunk (b: Buffer): Buffer {
  const out: Buffer[] = []
  let at = 0
  for (;;) {
    const eol = b.indexOf('\r\n', at)
    if (eol === -1) break
    const size = parseInt(b.subarray(at, eol).toString('latin1'), 16)
    if (!(size > 0)) break
    out.push(b.subarray(eol + 2, eol + 2 + size))
    at = eol + 2 + size + 2
  }
  return Buffer.concat(out)
}

// ==== shared by the fuzz suites (test/fuzz/) ================================

export const tick = async (): Promise<void> => { await new Promise<void>(resolve => { setImmediate(resolve) }) }
export const errName = (err: unknown): string => err instanceof Error ? err.name : `non-Error ${typeof err}: ${String(err)}`
export const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => a.byteLength === b.byteLength && a.every((x, i) => x === b[i])

export const PEER = '12D3KooWGzmZbc4DYcbN5VYwG2dtcbKPEv6QR3tVwUG4vRsNT4Cq'
export const FILE_ID = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
export const SOME_BYTES = Uint8Array.from({ length: 96 }, (_, i) => (i * 37) & 0xff)
export const HEARTBEAT = {
  peer: PEER,
  addrs: ['/ip4/127.0.0.1/tcp/4100', '/memory/x'],
  group: 'g1',
  state: 'ACTIVE',
  total: 1e12,
  free: 5e11,
  load: 2,
  version: '0.1.0',
  incarnation: 1_700_000_000_000,
  seq: 5,
  ts: 1_700_000_000_000,
  sync: { head: 10, filesToGo: 0, bytesToGo: 0 },
  spare: false,
  reserve: 1e11
}
