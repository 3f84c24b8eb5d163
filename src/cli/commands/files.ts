/** `dsm upload | download | stat | delete | ls`: files, through any node's HTTP API. */
import { createReadStream, createWriteStream, existsSync } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { basename } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { InvalidArgumentError } from 'commander'
import { BadRequestError } from '../../errors.ts'
import { fileNameProblem } from '../../content/names.ts'
import { DsmClient } from '../client.ts'
import { formatBytes, formatTable, printResult } from '../format.ts'
import type { ClientFlags } from '../format.ts'
import { byteProgress, counted } from '../progress.ts'
import type { FileListing } from '../../replica/list.ts'
import type { FileStat } from '../../replica/stat.ts'
import type { UploadResult } from '../../wire/messages.ts'
import type { PackageStatus } from '../../video/package-ops.ts'
import { packageText } from './video.ts'
import type { Command } from 'commander'

/** Uploads and downloads run as long as bytes move: no overall timeout. */
const NO_TIMEOUT = { timeoutMs: 2 ** 31 - 1 }

export function parseNonNegativeInt (value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('expected a non-negative integer')
  return Number(value)
}

/** Range header for --offset/--length, or undefined for the whole file. */
export function rangeHeader (offset?: number, length?: number): string | undefined {
  if (offset == null && length == null) return undefined
  if (length === 0) throw new BadRequestError('--length must be at least 1')
  const start = offset ?? 0
  return length == null ? `bytes=${start}-` : `bytes=${start}-${start + length - 1}`
}

export function registerFileCommands (program: Command, withClient: (cmd: Command) => Command): void {
  withClient(program.command('upload').argument('<file>', 'file to store').description('store a file in the cluster; prints its ID'))
    .option('--group <name>', 'store it in this group (default: the node\'s placement policy)')
    .option('--name <name>', 'name to store it under (default: the file\'s own name)')
    .option('--quorum <n>', 'copies required before the upload is acknowledged: "all" (default) or a number')
    .option('--hls', 'make an HLS ladder, a poster and a storyboard of the video (follow it with dsm jobs)')
    .action(async (file: string, flags: ClientFlags & { group?: string, name?: string, quorum?: string, hls?: boolean }) => {
      const { size } = await stat(file)
      const query = new URLSearchParams({ name: flags.name ?? basename(file) })
      if (flags.group != null) query.set('group', flags.group)
      if (flags.quorum != null) query.set('quorum', flags.quorum)
      if (flags.hls === true) query.set('hls', '1')
      const progress = byteProgress('upload', size)
      try {
        const body = Readable.toWeb(Readable.from(counted(createReadStream(file), progress))) as ReadableStream<Uint8Array>
        const result = await new DsmClient(flags.node, flags.token).json<UploadResult & { hls?: PackageStatus, hlsError?: string }>(`/files?${query.toString()}`, {
          method: 'POST', body, duplex: 'half', headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' }, ...NO_TIMEOUT
        } as RequestInit)
        progress.stop()
        printResult(flags, result, () => result.hlsError != null ? `${result.id}\n(stored, but its HLS ladder could not be asked for: ${result.hlsError}; retry with dsm hls ${result.id})` : result.id)
      } finally {
        progress.stop()
      }
    })

  withClient(program.command('download').argument('<id>', 'file ID').description('fetch a file (or part of it) from the cluster'))
    .option('-o, --output <file>', 'write here ("-" for stdout; default: stdout, or the file\'s name when stdout is a terminal)')
    .option('--offset <n>', 'first byte to fetch', parseNonNegativeInt)
    .option('--length <n>', 'number of bytes to fetch', parseNonNegativeInt)
    .action(async (id: string, flags: ClientFlags & { output?: string, offset?: number, length?: number }) => {
      const range = rangeHeader(flags.offset, flags.length)
      const res = await new DsmClient(flags.node, flags.token).fetch(`/files/${encodeURIComponent(id)}?download=1`, { headers: range != null ? { range } : {}, ...NO_TIMEOUT })
      const name = /filename="?([^";]+)"?/.exec(res.headers.get('content-disposition') ?? '')?.[1]
      const total = Number(res.headers.get('content-length') ?? NaN)
      // Only a bare name from the node is used as a local path (never a directory part).
      const safeName = name != null && fileNameProblem(name) == null ? basename(name) : undefined
      const target = flags.output ?? (process.stdout.isTTY === true ? (safeName ?? id) : '-')
      if (res.body == null) throw new Error('the node sent no body')
      const source = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>)
      if (target === '-') {
        await pipeline(source, process.stdout)
        return
      }
      if (flags.output == null && existsSync(target)) throw new BadRequestError(`${target} exists; choose another name with -o`)
      // Written to a temp name and renamed at the end: an interrupted download leaves no half file.
      const part = `${target}.part`
      const progress = byteProgress('download', Number.isFinite(total) ? total : undefined)
      try {
        await pipeline(source, async function * (chunks: AsyncIterable<Uint8Array>) { yield * counted(chunks, progress) }, createWriteStream(part))
        await rename(part, target)
      } catch (err) {
        await rm(part, { force: true })
        throw err
      } finally {
        progress.stop()
      }
      if (process.stderr.isTTY === true) process.stderr.write(`saved ${target}\n`)
    })

  withClient(program.command('stat').argument('<id>', 'file ID').description('show a file\'s metadata and where its copies are'))
    .action(async (id: string, flags: ClientFlags) => {
      const s = await new DsmClient(flags.node, flags.token).json<FileStat & { hls?: PackageStatus }>(`/api/files/${encodeURIComponent(id)}`)
      printResult(flags, s, () => [
        `id       ${s.id}`, `name     ${s.name}`, `size     ${formatBytes(s.size)} (${s.size} bytes)`, `mime     ${s.mime}`,
        `chunks   ${s.chunks} × ${formatBytes(s.chunkSize)}`, `created  ${new Date(s.createdAt).toISOString()}`, `group    ${s.group}`,
        `copies   ${s.copies} of ${s.replicas.length}${s.damaged ? ' — DAMAGED: no member holds a good copy of every chunk; not served (restore it from a backup or upload it again)' : ''}`, '',
        formatTable(['REPLICA', 'STATE', 'COPY'], s.replicas.map(r => [r.peerId, r.state, r.copy])),
        ...(s.hls != null ? ['', packageText(s.hls)] : [])
      ].join('\n'))
    })

  withClient(program.command('delete').argument('<id>', 'file ID').description('delete a file from every replica'))
    .action(async (id: string, flags: ClientFlags) => {
      const r = await new DsmClient(flags.node, flags.token).json<{ id: string, group: string, replicas: string[] }>(`/files/${encodeURIComponent(id)}`, { method: 'DELETE' })
      printResult(flags, r, () => `deleted ${r.id} from group ${r.group} (${r.replicas.length} members applied it now; the others on their next sync)`)
    })

  withClient(program.command('ls').description('list the files stored in the cluster'))
    .action(async (flags: ClientFlags) => {
      const files = await new DsmClient(flags.node, flags.token).json<FileListing[]>('/api/files')
      printResult(flags, files, () => files.length === 0
        ? 'no files yet'
        : formatTable(['ID', 'NAME', 'SIZE', 'GROUP', 'COPIES', 'CREATED'], files.map(f =>
          [f.id, f.name, formatBytes(f.size), f.group, String(f.copies), new Date(f.createdAt).toISOString()])))
    })

  withClient(program.command('sign').argument('<id>', 'file ID').description('make a signed, expiring download URL (for nodes run with --signed-urls)'))
    .option('--ttl <seconds>', 'how long the URL stays valid', parseNonNegativeInt)
    .action(async (id: string, flags: ClientFlags & { ttl?: number }) => {
      const client = new DsmClient(flags.node, flags.token)
      const r = await client.json<{ path: string, expires: number }>('/api/sign', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, ...(flags.ttl != null ? { ttl: flags.ttl } : {}) })
      })
      const url = `${client.baseUrl}${r.path}`
      printResult(flags, { url, expires: r.expires }, () => url)
    })
}
