/**
 * A mixed HTTP load on a cluster, as many clients would make it: uploads of
 * 4 KiB to 2 MiB, whole GETs, Range GETs and a few deletes, spread over every
 * node, each client on its own keep-alive connection pool. Remembers every
 * acknowledged upload and delete so the caller can check, afterwards, that
 * nothing acknowledged was lost and nothing deleted came back. Shared by the
 * load test (short, bounded) and `npm run bench -- load` (long, measured),
 * and, uploaders and readers apart, by the soak (test/node/soak.test.ts,
 * `npm run bench -- load --soak`).
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { createRng } from './rng.ts'
import type { Rng } from './rng.ts'

export type LoadOp = 'upload' | 'get' | 'range' | 'delete'

export interface LoadInit {
  /** HTTP base URLs of the nodes; each operation picks one at random. */
  urls: () => string[]
  clients: number
  /** Stop after this many operations in all… */
  operations?: number
  /** …or after this long (whichever comes first). */
  durationMs?: number
  seed?: number
  /** Upload sizes are drawn log-uniformly from this range. */
  minBytes?: number
  maxBytes?: number
  /** Share of each operation (defaults: uploads 30 %, gets 30 %, ranges 35 %, deletes 5 %). */
  mix?: Record<LoadOp, number>
  token?: string
  /** Extra query for uploads (e.g. `group=ga`). */
  uploadQuery?: string
  signal?: AbortSignal
  /** Clients that only read (whole GETs and Ranges, half each), on top of `clients`; they start once an upload is acknowledged. */
  readers?: number
  /** Stop once uploads sent this many bytes (acknowledged or not): a soak's budget. */
  uploadBytes?: number
  /**
   * false: keep no copy of the uploaded bodies (a soak uploads more than the
   * client should hold); each is made from a seed of its own and made again
   * to check a read. Default true.
   */
  keepBodies?: boolean
  /** After a 503 (no quorum, not started) the client waits this long before its next request, as a polite one would. */
  backoffMs?: number
  /** Every answer as it comes, for callers that sort them by phase (e.g. a kill window). */
  onResponse?: (answer: LoadAnswer) => void
}

export interface LoadAnswer {
  op: LoadOp
  status: number | 'error'
  /** The node asked. */
  base: string
  /** The file read or deleted, or the upload acknowledged. */
  id?: string
  /** The body of a 5xx, the error of a broken response, what came back wrong; else ''. */
  detail: string
  /** The bytes read differ from those uploaded. */
  wrong: boolean
  /** How long it took (so it was asked `ms` before it is reported). */
  ms: number
}

export interface OpStats { count: number, latenciesMs: number[], statuses: Record<string, number> }

export interface LoadResult {
  ops: Record<LoadOp, OpStats>
  /** Acknowledged uploads not deleted since: id → sha256 hex and size. */
  files: Map<string, { sha256: string, size: number }>
  /** Acknowledged deletes. */
  deleted: Set<string>
  /**
   * Files whose delete failed with an answer that does not say it did nothing
   * (a 5xx, a broken connection): deleted or kept, but the same on every node.
   */
  uncertain: Map<string, { sha256: string, size: number }>
  /** Responses that broke mid-body or never came (network errors), by operation. */
  broken: Record<LoadOp, number>
  /** Bytes that came back different from what was stored (must stay 0). */
  mismatches: number
  /** What the node said with each 5xx answer (so a failing run shows why). */
  serverErrorBodies: string[]
  /** What each broken response failed with: operation, node, file, error. */
  brokenDetails: string[]
  elapsedMs: number
}

const DEFAULT_MIX: Record<LoadOp, number> = { upload: 0.3, get: 0.3, range: 0.35, delete: 0.05 }
const READER_MIX: Record<LoadOp, number> = { upload: 0, get: 0.5, range: 0.5, delete: 0 }

function pickOp (rng: Rng, mix: Record<LoadOp, number>): LoadOp {
  let r = rng.next() * Object.values(mix).reduce((a, b) => a + b, 0)
  for (const [op, share] of Object.entries(mix) as Array<[LoadOp, number]>) {
    r -= share
    if (r < 0) return op
  }
  return 'get'
}

const sha256hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

export async function runMixedLoad (init: LoadInit): Promise<LoadResult> {
  const mix = init.mix ?? DEFAULT_MIX
  const minBytes = init.minBytes ?? 4 * 1024
  const maxBytes = init.maxBytes ?? 2 * 1024 * 1024
  const newStats = (): OpStats => ({ count: 0, latenciesMs: [], statuses: {} })
  const ops: Record<LoadOp, OpStats> = { upload: newStats(), get: newStats(), range: newStats(), delete: newStats() }
  const broken: Record<LoadOp, number> = { upload: 0, get: 0, range: 0, delete: 0 }
  const files = new Map<string, { sha256: string, size: number }>()
  const contents = new Map<string, Uint8Array>()
  /** keepBodies false: the seed and size each acknowledged body was made from. */
  const seeds = new Map<string, { seed: number, size: number }>()
  const bodyOf = (id: string): Uint8Array | undefined => {
    const s = seeds.get(id)
    return contents.get(id) ?? (s != null ? createRng(s.seed).bytes(s.size) : undefined)
  }
  const deleted = new Set<string>()
  const uncertain = new Map<string, { sha256: string, size: number }>()
  const started = performance.now()
  const deadline = init.durationMs != null ? started + init.durationMs : Infinity
  let issued = 0
  let sentBytes = 0
  let mismatches = 0
  const auth: Record<string, string> = init.token != null ? { authorization: `Bearer ${init.token}` } : {}
  const more = (): boolean => issued < (init.operations ?? Infinity) && sentBytes < (init.uploadBytes ?? Infinity) &&
    performance.now() < deadline && init.signal?.aborted !== true

  const serverErrorBodies: string[] = []
  const brokenDetails: string[] = []
  const record = (op: LoadOp, status: number | 'error', ms: number, base: string, detail = '', wrong = false, id?: string): void => {
    init.onResponse?.({ op, status, base, detail, wrong, ms, ...(id != null ? { id } : {}) })
    const s = ops[op]
    s.count++
    s.latenciesMs.push(ms)
    s.statuses[String(status)] = (s.statuses[String(status)] ?? 0) + 1
    if (status === 'error') {
      broken[op]++
      brokenDetails.push(`${op} ${id ?? ''} on ${base} after ${Math.round(ms)} ms: ${detail}`)
    }
  }

  const client = async (k: number, reader: boolean): Promise<void> => {
    const dispatcher = new Agent({ connections: 1, keepAliveTimeout: 30_000 })
    const local = createRng((init.seed ?? 1) * 1000 + k)
    let last: number | 'error' = 0
    const rec: typeof record = (...args) => { last = args[1]; record(...args) }
    try {
      while (more()) {
        // A reader has nothing to read until the first upload is acknowledged.
        if (reader && files.size === 0) { await sleep(20); continue }
        issued++
        let op = pickOp(local, reader ? READER_MIX : mix)
        const ids = [...files.keys()]
        if (op !== 'upload' && ids.length === 0) op = 'upload'
        const urls = init.urls()
        const base = urls[Math.floor(local.next() * urls.length)] as string
        const t0 = performance.now()
        let target: string | undefined
        try {
          if (op === 'upload') {
            const size = Math.round(Math.exp(Math.log(minBytes) + local.next() * (Math.log(maxBytes) - Math.log(minBytes))))
            const seed = init.keepBodies === false ? local.int(2 ** 31) : undefined
            const body = seed != null ? createRng(seed).bytes(size) : local.bytes(size)
            sentBytes += size
            const res = await request(`${base}/files?name=load-${k}-${issued}.bin${init.uploadQuery != null ? `&${init.uploadQuery}` : ''}`, {
              method: 'POST', body, headers: { 'content-type': 'application/octet-stream', ...auth }, dispatcher
            })
            const answer = await res.body.json() as { id?: string }
            rec(op, res.statusCode, performance.now() - t0, base, res.statusCode >= 500 ? JSON.stringify(answer).slice(0, 300) : '', false, answer.id)
            if (res.statusCode === 201 && answer.id != null && !deleted.has(answer.id)) {
              files.set(answer.id, { sha256: sha256hex(body), size })
              if (seed != null) seeds.set(answer.id, { seed, size }); else contents.set(answer.id, body)
            }
          } else if (op === 'delete') {
            const id = ids[Math.floor(local.next() * ids.length)] as string
            target = id
            files.delete(id)
            const res = await request(`${base}/files/${id}`, { method: 'DELETE', headers: auth, dispatcher })
            await res.body.arrayBuffer()
            rec(op, res.statusCode, performance.now() - t0, base, '', false, id)
            if (res.statusCode === 200) { deleted.add(id); contents.delete(id); seeds.delete(id) } else if (res.statusCode !== 404) {
              // A 4xx refused it (the file stays); a 5xx may have been applied by some member before it failed.
              const kept = bodyOf(id)
              if (kept != null) (res.statusCode >= 500 ? uncertain : files).set(id, { sha256: sha256hex(kept), size: kept.byteLength })
            }
          } else {
            const id = ids[Math.floor(local.next() * ids.length)] as string
            target = id
            const file = files.get(id)
            const size = file?.size ?? 0
            const start = op === 'range' ? Math.floor(local.next() * size) : 0
            const length = op === 'range' ? Math.max(1, Math.min(size - start, 1 + Math.floor(local.next() * 256 * 1024))) : size
            const headers = op === 'range' ? { range: `bytes=${start}-${start + length - 1}` } : {}
            const res = await request(`${base}/files/${id}`, { headers, dispatcher })
            const bytes = new Uint8Array(await res.body.arrayBuffer())
            const ms = performance.now() - t0
            const said = `${op} ${id} ${headers.range ?? ''}`
            if (res.statusCode >= 500) serverErrorBodies.push(`${said}: ${new TextDecoder().decode(bytes).slice(0, 300)}`)
            // Made again only for an answer with bytes to check (keepBodies false).
            const kept = res.statusCode === 200 || res.statusCode === 206 ? bodyOf(id) : undefined
            let wrong = false
            if ((res.statusCode === 200 || res.statusCode === 206) && kept != null && files.has(id)) {
              const want = op === 'range' ? kept.subarray(start, start + length) : kept
              wrong = sha256hex(bytes) !== sha256hex(want)
              if (wrong) mismatches++
            }
            rec(op, res.statusCode, ms, base, res.statusCode >= 500 ? serverErrorBodies.at(-1) ?? '' : res.statusCode === 404 ? new TextDecoder().decode(bytes).slice(0, 300) : wrong ? `${said}: wrong bytes (${bytes.byteLength} of ${length})` : '', wrong, id)
          }
        } catch (err) {
          rec(op, 'error', performance.now() - t0, base, `${String(err)}${err instanceof Error && err.cause != null ? ` (${String(err.cause)})` : ''}${deleted.has(target ?? '') || (target != null && !files.has(target)) ? ' [the file was deleted meanwhile]' : ''}`, false, target)
        }
        if (last === 503 && init.backoffMs != null) await sleep(init.backoffMs)
      }
    } finally {
      await dispatcher.close()
    }
  }

  await Promise.all(Array.from({ length: init.clients + (init.readers ?? 0) }, async (_, k) => client(k, k >= init.clients)))
  return { ops, files, deleted, uncertain, broken, mismatches, serverErrorBodies, brokenDetails, elapsedMs: performance.now() - started }
}

/** Responses with a 5xx status, over all operations. */
export function serverErrors (r: LoadResult): number {
  return Object.values(r.ops).reduce((n, s) => n + Object.entries(s.statuses).filter(([code]) => code.startsWith('5')).reduce((a, [, c]) => a + c, 0), 0)
}
