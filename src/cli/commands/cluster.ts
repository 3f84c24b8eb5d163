/** `dsm id`, `dsm peers`, `dsm groups`: what a node knows of the cluster. */
import { CLOCK_SKEW_WARN_MS } from '../../constants.ts'
import { DsmClient } from '../client.ts'
import { formatBytes, formatTable, printResult, secretRefusedText, shortPeerId } from '../format.ts'
import type { ClientFlags } from '../format.ts'
import type { Command } from 'commander'

interface MemberJson {
  peerId: string
  state: string
  group?: string | null
  addrs: string[]
  free: number
  total: number
  load: number
  sync: { head: number, filesToGo: number, bytesToGo: number }
  lastSeenMsAgo: number
  skewMs?: number
  self?: boolean
  connected?: boolean
}

interface GroupJson { name: string, health: { target: number, active: number, state: string }, copies?: { files: number, belowTarget: number, damaged: number }, members: MemberJson[] }

/** The group's files and how many lack copies, on its first line. */
function copiesText (g: GroupJson): string {
  if (g.copies == null) return ''
  const { files, belowTarget, damaged } = g.copies
  return `${files} files` + (belowTarget > 0 ? `, ${belowTarget} below ${g.health.target} copies` : '') + (damaged > 0 ? `, ${damaged} DAMAGED (no good copy)` : '')
}

/** A member's clock against the node asked, when it is off by more than CLOCK_SKEW_WARN_MS. */
function clockText (m: MemberJson): string {
  if (m.skewMs == null || Math.abs(m.skewMs) <= CLOCK_SKEW_WARN_MS) return ''
  return `${m.skewMs > 0 ? '+' : '-'}${Math.round(Math.abs(m.skewMs) / 1000)}s`
}

function syncText (m: MemberJson): string {
  return m.state === 'SYNCING' ? `${m.sync.filesToGo} files / ${formatBytes(m.sync.bytesToGo)} to go` : ''
}

export function registerClusterCommands (program: Command, withClient: (cmd: Command) => Command): void {
  withClient(program.command('id').description('show the node\'s peer id, addresses, group and state'))
    .action(async (flags: ClientFlags) => {
      const id = await new DsmClient(flags.node, flags.token).json<{ peerId: string, addrs: string[], group: string | null, state: string }>('/api/id')
      printResult(flags, id, () => [`peer   ${id.peerId}`, `group  ${id.group ?? '-'}`, `state  ${id.state}`, ...id.addrs.map(a => `addr   ${a}`)].join('\n'))
    })

  withClient(program.command('peers').description('list every member the node knows of'))
    .action(async (flags: ClientFlags) => {
      const peers = await new DsmClient(flags.node, flags.token).json<MemberJson[]>('/api/peers')
      printResult(flags, peers, () => formatTable(
        ['PEER', 'GROUP', 'STATE', 'FREE', 'LOAD', 'SEEN', 'CONN'],
        peers.map(p => [shortPeerId(p.peerId) + (p.self === true ? ' (self)' : ''), p.group ?? '-', p.state,
          formatBytes(p.free), String(p.load), `${(p.lastSeenMsAgo / 1000).toFixed(1)}s`, p.connected === true ? 'yes' : 'no'])))
    })

  withClient(program.command('groups').description('list replica groups and their members'))
    .action(async (flags: ClientFlags) => {
      const client = new DsmClient(flags.node, flags.token)
      const [groups, id] = await Promise.all([client.json<GroupJson[]>('/api/groups'), client.json<{ secret?: { provenPeers: number, refusedPeers: number } }>('/api/id')])
      const refused = id.secret != null ? secretRefusedText(id.secret) : undefined
      if (refused != null) process.stderr.write(`${refused}\n\n`)
      printResult(flags, groups, () => groups.length === 0
        ? 'no groups yet'
        : formatTable(['GROUP', 'HEALTH', 'FILES', 'PEER', 'STATE', 'FREE', 'TOTAL', 'LOAD', 'SYNC', 'CLOCK'],
          groups.flatMap(g => g.members.map((m, i) => [i === 0 ? g.name : '', i === 0 ? `${g.health.state} ${g.health.active}/${g.health.target}` : '', i === 0 ? copiesText(g) : '',
            shortPeerId(m.peerId), m.state, formatBytes(m.free), formatBytes(m.total), String(m.load), syncText(m), clockText(m)]))) +
          (groups.some(g => g.members.some(m => clockText(m) !== '')) ? '\nCLOCK: a member\'s clock against this node\'s; run NTP on every host (dsm keeps working, but signed URLs and shown times follow each host\'s clock)' : ''))
    })
}
