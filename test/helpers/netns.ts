/**
 * Linux network namespaces for multi-host tests: every host is a namespace
 * with one veth leg on a bridge in the root namespace; the root namespace
 * holds the bridge's .1 address, so the test process reaches every host with
 * plain fetch(). Faults are real link faults:
 *
 * - `isolate(net, host)`: the host's veth goes down (it reaches nobody, and
 *   nobody — the test process included — reaches it);
 * - `partition(net, side)`: the hosts of `side` move to a second bridge: they
 *   still reach each other, but neither the other hosts nor the test process;
 * - `heal(net)`: every veth is back on the main bridge and up.
 *
 * Hosts cut off from the test process are queried from inside their own
 * namespace (`nsHttp`, curl through `ip netns exec`). All names carry a random
 * suffix; `destroy` removes everything and never throws. Root only.
 */
import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { DSM_BIN, TEST_SECRET, nodeArgs, superviseNode } from '../sim/proc.ts'
import type { ProcNode, ProcNodeInit } from '../sim/proc.ts'

const run = promisify(execFile)

export interface NetHost {
  index: number
  /** Namespace name. */
  ns: string
  /** The root-namespace end of the host's veth pair (what faults act on). */
  veth: string
  ip: string
}

export interface Net {
  id: string
  /** First three octets of the /24, e.g. "10.77.42". */
  prefix: string
  bridge: string
  /** The bridge partitioned hosts move to (created by the first partition). */
  sideBridge: string
  hosts: NetHost[]
  /** Everything created, newest last, for destroy(). */
  created: Array<{ kind: 'ns' | 'link', name: string }>
}

function ip (...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Why namespaces cannot be used here, or undefined when they can (probed by creating and removing one). */
export function netnsUnavailable (): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add)'
  try {
    ip('-V')
  } catch {
    return 'the `ip` command (iproute2) is not installed'
  }
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' })
  } catch {
    return 'curl is not installed (needed to reach hosts cut off from the test process)'
  }
  const probe = `dsmprobe${randomBytes(3).toString('hex')}`
  try {
    ip('netns', 'add', probe)
  } catch (err) {
    return `\`ip netns add\` failed: ${String((err as { stderr?: string }).stderr ?? err).trim()}`
  }
  try {
    ip('link', 'add', `${probe}a`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', probe)
    ip('link', 'add', `${probe}b`, 'type', 'bridge')
    ip('link', 'del', `${probe}b`)
  } catch (err) {
    return `cannot create veth pairs or bridges: ${String((err as { stderr?: string }).stderr ?? err).trim()}`
  } finally {
    try { ip('netns', 'del', probe) } catch {}
    try { ip('link', 'del', `${probe}a`) } catch {}
  }
  return undefined
}

/** A /24 under 10.77 that no interface here uses yet. */
function freePrefix (): string {
  const used = ip('-4', '-o', 'addr', 'show')
  for (let attempt = 0; attempt < 64; attempt++) {
    const prefix = `10.77.${1 + Math.floor(Math.random() * 254)}`
    if (!used.includes(` ${prefix}.`)) return prefix
  }
  throw new Error('no free 10.77.x.0/24 subnet')
}

/** A bridge in the root namespace with the address <prefix>.1/24, so the test process can reach every host. */
export function createNet (): Net {
  const id = randomBytes(3).toString('hex')
  const net: Net = { id, prefix: freePrefix(), bridge: `dsmbr${id}`, sideBridge: `dsmbq${id}`, hosts: [], created: [] }
  // Last resort if the test process ends without its afterAll (destroy is idempotent and synchronous).
  process.once('exit', () => { destroy(net) })
  try {
    ip('link', 'add', net.bridge, 'type', 'bridge')
    net.created.push({ kind: 'link', name: net.bridge })
    ip('addr', 'add', `${net.prefix}.1/24`, 'dev', net.bridge)
    ip('link', 'set', net.bridge, 'up')
  } catch (err) {
    destroy(net)
    throw err
  }
  return net
}

/** A namespace with a veth leg on the bridge, address <prefix>.<index + 10>/24, loopback up. */
export function addHost (net: Net): NetHost {
  const index = net.hosts.length + 1
  const host: NetHost = { index, ns: `dsm-${net.id}-h${index}`, veth: `dsmv${net.id}${index}`, ip: `${net.prefix}.${index + 10}` }
  ip('netns', 'add', host.ns)
  net.created.push({ kind: 'ns', name: host.ns })
  ip('link', 'add', host.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.ns)
  net.created.push({ kind: 'link', name: host.veth })
  ip('link', 'set', host.veth, 'master', net.bridge)
  ip('link', 'set', host.veth, 'up')
  ip('netns', 'exec', host.ns, 'ip', 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0')
  ip('netns', 'exec', host.ns, 'ip', 'link', 'set', 'eth0', 'up')
  ip('netns', 'exec', host.ns, 'ip', 'link', 'set', 'lo', 'up')
  net.hosts.push(host)
  return host
}

/** Cut one host off completely: its link goes down. */
export function isolate (net: Net, host: NetHost): void {
  if (!net.hosts.includes(host)) throw new Error(`host ${host.ns} is not on ${net.bridge}`)
  ip('link', 'set', host.veth, 'down')
}

/** Split the network: the hosts of `side` keep their links among themselves, cut from the rest and from the test process. */
export function partition (net: Net, side: NetHost[]): void {
  if (!net.created.some(c => c.name === net.sideBridge)) {
    ip('link', 'add', net.sideBridge, 'type', 'bridge')
    net.created.push({ kind: 'link', name: net.sideBridge })
    ip('link', 'set', net.sideBridge, 'up')
  }
  for (const host of side) ip('link', 'set', host.veth, 'master', net.sideBridge)
}

/** Undo every fault: each host's veth back on the main bridge, up. */
export function heal (net: Net): void {
  for (const host of net.hosts) {
    ip('link', 'set', host.veth, 'master', net.bridge)
    ip('link', 'set', host.veth, 'up')
  }
}

/** Remove namespaces, veths and bridges (newest first). Never throws; returns what could not be removed. */
export function destroy (net: Net): string[] {
  const failed: string[] = []
  for (const item of [...net.created].reverse()) {
    try {
      if (item.kind === 'ns') ip('netns', 'del', item.name)
      else ip('link', 'del', item.name)
    } catch (err) {
      const msg = String((err as { stderr?: string }).stderr ?? err)
      // A veth disappears with its namespace: that is not a failure.
      if (!/Cannot find device|does not exist/i.test(msg)) failed.push(`${item.name}: ${msg.trim()}`)
    }
  }
  net.created.length = 0
  return failed
}

/** Does anything of this net still exist (namespaces or links)? */
export function leftovers (net: Net): string[] {
  const links = ip('-o', 'link', 'show')
  const spaces = ip('netns', 'list')
  return [net.bridge, net.sideBridge, ...net.hosts.map(h => h.veth)].filter(n => links.includes(`${n}:`) || links.includes(`${n}@`))
    .concat(net.hosts.map(h => h.ns).filter(n => spaces.split('\n').some(l => l.split(' ')[0] === n)))
}

export type NsNodeInit = ProcNodeInit

/** Fast membership for multi-host tests. */
// Single-copy writes allowed (--min-copies 1): these tests check that what a cut-off member acknowledges alone
// survives the heal. The default copy floor of 2, which refuses such writes, is tested in test/replica/copy-floor.test.ts.
export const NETNS_ENV = { DSM_HEARTBEAT_INTERVAL_MS: '300', DSM_OFFLINE_AFTER_MS: '2500', DSM_LOG_LEVEL: 'warn', DSM_OPEN: '1', DSM_SECRET: TEST_SECRET, DSM_MIN_COPIES: '1', DSM_S3: 'off' }

/**
 * `ip netns exec <ns> bin/dsm node` listening on the host's address. `ip netns
 * exec` and bin/dsm both exec, so the child's pid is the node's: stop('SIGKILL')
 * is a real kill -9 of the node.
 */
export async function startNsNode (host: NetHost, init: NsNodeInit): Promise<ProcNode> {
  const args = ['netns', 'exec', host.ns, DSM_BIN, ...nodeArgs(init, host.ip, 4100, 8080)]
  return superviseNode('ip', args, { ...NETNS_ENV, ...init.env }, { ip: host.ip, label: `dsm node in ${host.ns}`, startTimeoutMs: 30_000 })
}

/**
 * An HTTP request made from inside a host's namespace (curl), for hosts the
 * test process cannot reach during a fault. Returns the status and body.
 */
export async function nsHttp (host: NetHost, url: string, opts: { method?: string, body?: Uint8Array, contentType?: string, timeoutS?: number } = {}): Promise<{ status: number, body: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'dsm-nshttp-'))
  try {
    const outFile = join(dir, 'out')
    const args = ['netns', 'exec', host.ns, 'curl', '-s', '-S', '-m', String(opts.timeoutS ?? 15), '-o', outFile, '-w', '%{http_code}', '-X', opts.method ?? 'GET']
    if (opts.body != null) {
      const inFile = join(dir, 'in')
      await writeFile(inFile, opts.body)
      args.push('--data-binary', `@${inFile}`, '-H', `content-type: ${opts.contentType ?? 'application/octet-stream'}`)
    }
    args.push(url)
    let status = 0
    try {
      const { stdout } = await run('ip', args, { maxBuffer: 1024 * 1024 })
      status = Number(stdout.trim())
    } catch (err) {
      // curl exits non-zero when it gets no answer (e.g. a timeout): status 0.
      status = Number((err as { stdout?: string }).stdout?.trim() ?? 0) || 0
    }
    const body = await readFile(outFile).catch(() => Buffer.alloc(0))
    return { status, body }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
