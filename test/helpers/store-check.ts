/**
 * Helpers for crash tests across OS processes: streamed uploads whose body can
 * be paused (to land a kill mid-body) or cut (a client crash), the file ID an
 * upload would get, free ports, and an offline inspection of a node's data dir
 * (index rows vs chunk files vs tmp/).
 */
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { open, readdir } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { connect, createServer } from 'node:net'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { chunkDigest, hashChunk } from '../../src/content/chunk-hash.ts'
import { createManifest } from '../../src/content/manifest.ts'

export const MiB = 1024 * 1024
/** dsm's chunk size (DEFAULT_CHUNK_SIZE_BYTES); every node in these tests uses it. */
export const CHUNK_BYTES = MiB

/** A TCP port that was free a moment ago (for restarts at a fixed address). */
/**
 * A port that is free now and stays free for a restart at the same address: picked below the kernel's
 * ephemeral range (32768–60999), where outbound connections of other processes cannot take it meanwhile.
 */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if (await canListen(port, host)) return port
  }
  throw new Error('no free port below the ephemeral range')
}

async function canListen (port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => { resolve(false) })
    server.listen(port, host, () => { server.close(() => { resolve(true) }) })
  })
}

/** The file ID dsm gives `data` uploaded under `name` with Content-Type `mime` (the manifest CID). */
export async function expectedFileId (data: Uint8Array, name: string, mime: string): Promise<string> {
  const chunks: Uint8Array[] = []
  for (let at = 0; at < data.byteLength; at += CHUNK_BYTES) chunks.push(await chunkDigest(data.subarray(at, at + CHUNK_BYTES)))
  const manifest = await createManifest({ size: data.byteLength, chunkSize: CHUNK_BYTES, chunks, name, mime })
  return manifest.id.toString()
}

export type UploadOutcome =
  | { kind: 'acked', status: 201, id: string, replicas: string[] }
  /** The node answered, but not 201 (e.g. 503 ERR_QUORUM). */
  | { kind: 'refused', status: number, code: string, message: string }
  /** No answer: the connection broke, the client gave up or crashed. */
  | { kind: 'failed', error: string }

export interface StreamUploadOptions {
  mime: string
  /** Bytes written per body piece. */
  pieceBytes?: number
  /** Once `at` bytes of the body are written (and flushed to the socket), the body waits for `action` (e.g. a kill) before going on. */
  pauseAt?: { at: number, action: () => Promise<void> }
  /** Called (not awaited) right after the last byte of the body went out. */
  onBodyEnd?: () => void
  /** The client "crashes" after this many body bytes: the connection is destroyed mid-body. */
  abortAt?: number
  timeoutMs?: number
}

/**
 * POST /files with a chunked body written piece by piece on a connection of
 * its own (node:http, no keep-alive), so that a fault can land at a chosen
 * point of the body and a half-sent body never shares a connection with a
 * later request. Every way the upload can end is an outcome; it throws only if `pauseAt.action` does.
 */
export async function streamUpload (url: string, data: Uint8Array, name: string, opts: StreamUploadOptions): Promise<UploadOutcome> {
  const piece = opts.pieceBytes ?? 64 * 1024
  const target = new URL(`${url}/files?${new URLSearchParams({ name }).toString()}`)
  // keep-alive: a node that answers early must not close the connection under the body still being
  // written (the answer would be lost to EPIPE); the connection is ours alone and destroyed at the end.
  const req = httpRequest(target, { method: 'POST', agent: false, headers: { 'content-type': opts.mime, connection: 'keep-alive' } })
  req.setTimeout(opts.timeoutMs ?? 30_000, () => { req.destroy(new Error(`no answer in ${opts.timeoutMs ?? 30_000} ms`)) })
  const response = new Promise<UploadOutcome>((resolve) => {
    req.once('error', (err) => { resolve({ kind: 'failed', error: err.message }) })
    req.once('response', (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.once('error', (err) => { resolve({ kind: 'failed', error: `response cut: ${err.message}` }) })
      res.once('aborted', () => { resolve({ kind: 'failed', error: 'response aborted' }) })
      res.once('end', () => {
        const text = Buffer.concat(parts).toString()
        try {
          if (res.statusCode === 201) {
            const json = JSON.parse(text) as { id: string, replicas: string[] }
            resolve({ kind: 'acked', status: 201, id: json.id, replicas: json.replicas })
            return
          }
          const err = JSON.parse(text) as { code?: string, message?: string }
          resolve({ kind: 'refused', status: res.statusCode ?? 0, code: err.code ?? '', message: err.message ?? '' })
        } catch {
          resolve({ kind: 'refused', status: res.statusCode ?? 0, code: '', message: text })
        }
      })
    })
  })
  let answered = false
  void response.then(() => { answered = true })
  const write = async (bytes: Uint8Array): Promise<void> => {
    // Resolves once the piece is handed to the kernel (or the request died).
    await new Promise<void>((resolve) => { req.write(bytes, () => { resolve() }) })
  }
  const send = async (): Promise<void> => {
    let offset = 0
    let paused = false
    for (;;) {
      if (answered || req.destroyed) return
      if (opts.pauseAt != null && !paused && offset >= opts.pauseAt.at) {
        paused = true
        try {
          await opts.pauseAt.action()
        } catch (err) {
          req.destroy()
          throw err // the fault itself failed: a test error, not an outcome
        }
        continue
      }
      if (opts.abortAt != null && offset >= opts.abortAt) {
        req.destroy(new Error(`client crashed after ${offset} of ${data.byteLength} body bytes`))
        return
      }
      if (offset >= data.byteLength) {
        req.end()
        opts.onBodyEnd?.()
        return
      }
      let end = Math.min(offset + piece, data.byteLength)
      // Stop exactly at the pause/abort point, so the fault lands after that many bytes.
      for (const point of [opts.pauseAt != null && !paused ? opts.pauseAt.at : undefined, opts.abortAt]) {
        if (point != null && point > offset) end = Math.min(end, point)
      }
      await Promise.race([write(data.subarray(offset, end)), response])
      offset = end
    }
  }
  await send()
  const outcome = await response
  req.destroy()
  return outcome
}

export interface FileRecord { id: string, state: 'present' | 'pending' | 'deleted', digests: string[] }

export interface StoreInspection {
  files: Map<string, FileRecord>
  /** Hex digests of the chunks the store holds (its chunk index: inline rows and volume needles). */
  chunkFiles: Set<string>
  /** Stored chunks whose bytes do not hash to their digest (or lie beyond their volume's end). */
  corruptChunks: string[]
  /** Uploads prepared and not decided. */
  prepared: string[]
  /** Files and directories left in tmp/ (absent is fine). */
  tmpEntries: string[]
  /** Anything in volumes/ that is not a volume file, and chunk files of the old layout. */
  strayPaths: string[]
}

export interface ChunkLocation { volume: number, offset: number, length: number }

/** Where a stored chunk lives (the node must be down): its volume and offset, or volume 0 for inline. */
export function chunkLocation (dataDir: string, hex: string): ChunkLocation | undefined {
  const db = new DatabaseSync(join(dataDir, 'dsm.db'), { readOnly: true })
  try {
    return db.prepare('SELECT volume, offset, length FROM chunks WHERE digest = ?').get(Buffer.from(hex, 'hex')) as ChunkLocation | undefined
  } finally {
    db.close()
  }
}

export function volumePath (dataDir: string, volume: number): string {
  return join(dataDir, 'volumes', `${String(volume).padStart(8, '0')}.vol`)
}

/**
 * Read a node's data dir while the node is NOT running: the index (dsm.db,
 * read-only) and every stored chunk, each verified against its digest.
 */
export async function inspectStore (dataDir: string): Promise<StoreInspection> {
  const files = new Map<string, FileRecord>()
  const chunkFiles = new Set<string>()
  const corruptChunks: string[] = []
  const prepared: string[] = []
  if (existsSync(join(dataDir, 'dsm.db'))) {
    const db = new DatabaseSync(join(dataDir, 'dsm.db'), { readOnly: true })
    try {
      // A one-chunk file's digest is in its row (migration 9); other files' chunks are in file_chunks.
      const rows = db.prepare('SELECT id, state, chunk FROM files').all() as Array<{ id: string, state: FileRecord['state'], chunk: Uint8Array | null }>
      for (const r of rows) files.set(r.id, { id: r.id, state: r.state, digests: r.chunk != null ? [Buffer.from(r.chunk).toString('hex')] : [] })
      const refs = db.prepare('SELECT file_id, idx, digest FROM file_chunks ORDER BY file_id, idx').all() as Array<{ file_id: string, idx: number, digest: Uint8Array }>
      for (const c of refs) files.get(c.file_id)?.digests.push(Buffer.from(c.digest).toString('hex'))
      for (const p of db.prepare('SELECT id FROM prepared').all() as Array<{ id: string }>) prepared.push(p.id)
      const stored = db.prepare('SELECT digest, volume, offset, length, data FROM chunks').all() as Array<{ digest: Uint8Array, volume: number, offset: number, length: number, data: Uint8Array | null }>
      for (const c of stored) {
        const hex = Buffer.from(c.digest).toString('hex')
        chunkFiles.add(hex)
        const bytes = c.volume === 0 ? c.data ?? new Uint8Array(0) : await readRange(volumePath(dataDir, c.volume), c.offset, c.length)
        if (bytes.byteLength !== c.length || Buffer.from((await hashChunk(bytes)).digest).toString('hex') !== hex) corruptChunks.push(hex)
      }
    } finally {
      db.close()
    }
  }
  const strayPaths = (await readdir(join(dataDir, 'volumes')).catch(() => [] as string[])).filter(n => !/^\d{8}\.vol$/.test(n)).map(n => join('volumes', n))
  if (existsSync(join(dataDir, 'chunks'))) strayPaths.push('chunks/ (the old chunk-file layout)')
  const tmpEntries = await readdir(join(dataDir, 'tmp')).catch(() => [] as string[])
  return { files, chunkFiles, corruptChunks, prepared, tmpEntries, strayPaths }
}

async function readRange (path: string, offset: number, length: number): Promise<Uint8Array> {
  const fh = await open(path, 'r').catch(() => undefined)
  if (fh == null) return new Uint8Array(0)
  try {
    const buf = Buffer.alloc(length)
    const { bytesRead } = await fh.read(buf, 0, length, offset)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/**
 * What is wrong with a quiet node's store: the stored chunks must be exactly
 * the chunks of its present files (nothing missing, nothing left over), no
 * file may still be pending and no upload undecided, tombstones keep no chunk
 * list, tmp/ must be empty and every chunk must verify.
 */
export function storeProblems (s: StoreInspection): string[] {
  const problems: string[] = []
  const referenced = new Set<string>()
  for (const f of s.files.values()) {
    if (f.state === 'pending') problems.push(`file ${f.id} is still pending`)
    if (f.state === 'deleted' && f.digests.length > 0) problems.push(`tombstone ${f.id} still lists ${f.digests.length} chunks`)
    if (f.state === 'present') {
      for (const d of f.digests) {
        referenced.add(d)
        if (!s.chunkFiles.has(d)) problems.push(`present file ${f.id} misses chunk ${d.slice(0, 16)}…`)
      }
    }
  }
  for (const d of s.chunkFiles) if (!referenced.has(d)) problems.push(`stored chunk ${d.slice(0, 16)}… is not referenced by any present file`)
  for (const d of s.corruptChunks) problems.push(`stored chunk ${d.slice(0, 16)}… does not match its hash`)
  for (const id of s.prepared) problems.push(`upload of ${id} is still undecided`)
  for (const p of s.strayPaths) problems.push(`stray path ${p}`)
  if (s.tmpEntries.length > 0) problems.push(`tmp/ is not empty: ${s.tmpEntries.join(', ')}`)
  return problems
}

export function presentIds (s: StoreInspection): string[] {
  return [...s.files.values()].filter(f => f.state === 'present').map(f => f.id).sort()
}

/**
 * HTTP/1.1 keep-alive after an early answer, on a raw connection: POST a
 * body of `size` bytes (Content-Length), run `fault` after `faultAt` bytes,
 * keep sending until the node answers, then send the rest of the body as the
 * protocol requires, and a `GET /healthz` on the same connection. Returns the
 * two status lines ("" when none came in `waitMs`) and how much of the body
 * had been sent when the first answer came.
 */
export async function uploadThenReuseConnection (url: string, size: number, faultAt: number, fault: () => Promise<void>, waitMs = 5_000): Promise<{ first: string, answeredAfter: number, second: string, closed: boolean }> {
  const u = new URL(url)
  const sock = connect(Number(u.port), u.hostname)
  await once(sock, 'connect')
  let got = ''
  let closed = false
  sock.on('data', (d: Buffer) => { got += d.toString('latin1') })
  sock.on('close', () => { closed = true })
  sock.on('error', () => {})
  const answered = (): boolean => got.includes('\r\n\r\n')
  const until = async (cond: () => boolean, ms: number): Promise<void> => {
    const deadline = Date.now() + ms
    while (!cond() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  }
  try {
    sock.write(`POST /files?name=keepalive.bin HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/x-keepalive\r\nContent-Length: ${size}\r\n\r\n`)
    const piece = Buffer.alloc(64 * 1024, 7)
    let sent = 0
    const sendPiece = async (): Promise<void> => {
      const n = Math.min(piece.length, size - sent)
      sent += n
      if (!sock.write(piece.subarray(0, n))) await Promise.race([once(sock, 'drain'), until(() => closed, 1_000)])
    }
    while (sent < faultAt && !closed) await sendPiece()
    await fault()
    while (sent < size && !answered() && !closed) {
      await sendPiece()
      await until(answered, 5)
    }
    await until(() => answered() || closed, waitMs)
    const first = got.split('\r\n')[0] ?? ''
    const answeredAfter = sent
    // The rest of the body in one go (buffered by Node if the node does not read it), then the next request.
    if (!closed && sent < size) sock.write(Buffer.alloc(size - sent, 7))
    sent = size
    got = ''
    if (!closed) sock.write(`GET /healthz HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`)
    await until(() => answered() || closed, waitMs)
    return { first, answeredAfter, second: got.split('\r\n')[0] ?? '', closed }
  } finally {
    sock.destroy()
  }
}
