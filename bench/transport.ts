/**
 * Transport throughput: one stream of 256 MiB in 64 KiB writes between two
 * OS processes over TCP on loopback — noise+yamux vs TLS+yamux, with raw TCP
 * as the baseline measured in the same run. Decides dsm's encrypter order.
 */
import { fork } from 'node:child_process'
import { createConnection, createServer } from 'node:net'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { socketTls } from '../src/net/socket-tls.ts'
import { writeBufferEmpty } from '../src/wire/frames.ts'
import { MiB, printTable, stats, writeResults } from './lib.ts'
import type { ChildProcess } from 'node:child_process'

const PROTOCOL = '/dsm-bench/sink/1.0.0'
const WRITE_BYTES = 64 * 1024

export type Mode = 'tcp' | 'noise' | 'tls' | 'tls-socket'

const encrypter = (mode: Exclude<Mode, 'tcp'>) => mode === 'tls' ? tls() : mode === 'tls-socket' ? socketTls() : noise()

async function serve (mode: Mode): Promise<void> {
  if (mode === 'tcp') {
    const server = createServer(socket => {
      let n = 0
      socket.on('data', (d: Buffer) => { n += d.length })
      socket.on('end', () => { socket.end(String(n)) })
    })
    server.listen(0, '127.0.0.1', () => { process.send?.({ addr: String((server.address() as { port: number }).port) }) })
    return
  }
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [encrypter(mode)],
    streamMuxers: [yamux()]
  })
  await node.handle(PROTOCOL, async (stream) => {
    let n = 0
    for await (const chunk of stream) n += chunk.byteLength
    stream.send(new TextEncoder().encode(String(n)))
    await stream.close()
  })
  process.send?.({ addr: node.getMultiaddrs()[0]?.toString() })
}

export async function sendTcp (port: number, total: number): Promise<number> {
  const block = Buffer.alloc(WRITE_BYTES, 7)
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, async () => {
      const start = performance.now()
      let ack = ''
      socket.on('data', (d: Buffer) => { ack += d.toString() })
      socket.on('end', () => { Number(ack) === total ? resolve(performance.now() - start) : reject(new Error(`short: ${ack}`)) })
      for (let sent = 0; sent < total; sent += WRITE_BYTES) {
        if (!socket.write(block)) await new Promise(resolve => socket.once('drain', resolve))
      }
      socket.end()
    })
    socket.on('error', reject)
  })
}

export async function sendLibp2p (mode: Exclude<Mode, 'tcp'>, addr: string, total: number): Promise<number> {
  const node = await createLibp2p({
    transports: [tcp()],
    connectionEncrypters: [encrypter(mode)],
    streamMuxers: [yamux()]
  })
  try {
    const stream = await node.dialProtocol(multiaddr(addr), PROTOCOL)
    const block = new Uint8Array(WRITE_BYTES).fill(7)
    const start = performance.now()
    for (let sent = 0; sent < total; sent += WRITE_BYTES) {
      // Not stream.onDrain(): it stops waiting after the first drain (see src/wire/frames.ts).
      if (!stream.send(block)) await writeBufferEmpty(stream)
    }
    await stream.close()
    let ack = ''
    for await (const chunk of stream) ack += new TextDecoder().decode(chunk.subarray())
    if (Number(ack) !== total) throw new Error(`short: ${ack}`)
    return performance.now() - start
  } finally {
    await node.stop()
  }
}

export async function startServer (mode: Mode): Promise<{ child: ChildProcess, addr: string }> {
  const child = fork(import.meta.filename, ['--serve', mode], { execArgv: ['--disable-warning=ExperimentalWarning'] })
  const addr = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { addr: string }) => { resolve(m.addr) })
    child.once('exit', code => { reject(new Error(`server exited ${code}`)) })
  })
  return { child, addr }
}

/** MiB/s of one `mib` MiB stream to a fresh server process, median of `rounds`. */
export async function measureTransport (mode: Mode, mib: number, rounds: number): Promise<number[]> {
  const { child, addr } = await startServer(mode)
  const out: number[] = []
  try {
    for (let r = 0; r < rounds; r++) {
      const ms = mode === 'tcp' ? await sendTcp(Number(addr), mib * MiB) : await sendLibp2p(mode, addr, mib * MiB)
      out.push(mib / (ms / 1000))
    }
  } finally {
    child.kill()
  }
  return out
}

export async function run (args: string[]): Promise<void> {
  const mib = Number(args.find(a => a.startsWith('--mib='))?.slice(6) ?? 256)
  const rounds = Number(args.find(a => a.startsWith('--rounds='))?.slice(9) ?? 3)
  const results: Record<string, { mibps: number[], stats: ReturnType<typeof stats> }> = {}
  const modes = ['tcp', 'noise', 'tls', 'tls-socket'] as const
  for (const mode of modes) {
    const mibps = await measureTransport(mode, mib, rounds)
    results[mode] = { mibps, stats: stats(mibps) }
  }
  const tcpMedian = results.tcp?.stats.median ?? NaN
  printTable(`one stream, ${mib} MiB in 64 KiB writes, two processes, TCP loopback (MiB/s, ${rounds} rounds)`,
    ['setup', 'min', 'median', 'max', 'vs raw TCP'],
    modes.map(m => {
      const s = results[m]?.stats ?? { min: NaN, median: NaN, max: NaN }
      return [m === 'tcp' ? 'raw TCP' : `${m} + yamux`, s.min, s.median, s.max, `${(s.median / tcpMedian).toFixed(2)}×`]
    }))
  const tlsOverNoise = (results.tls?.stats.median ?? NaN) / (results.noise?.stats.median ?? NaN)
  const socketOverTls = (results['tls-socket']?.stats.median ?? NaN) / (results.tls?.stats.median ?? NaN)
  process.stdout.write(`\nTLS / noise (median): ${tlsOverNoise.toFixed(2)}×; TLS on the socket / @libp2p/tls: ${socketOverTls.toFixed(2)}×\n`)
  const path = writeResults('transport', { mib, rounds, results, tls_over_noise: tlsOverNoise, tls_socket_over_tls: socketOverTls })
  process.stdout.write(`wrote ${path}\n`)
}

if (process.argv[2] === '--serve' && import.meta.filename === process.argv[1]) await serve(process.argv[3] as Mode)
