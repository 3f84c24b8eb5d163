/** Cluster introspection: `/healthz`, `/api/id`, `/api/peers`, `/api/groups`. */
import { monotonicNow } from '../../util/time.ts'
import type { GroupView, MemberRecord } from '../../membership/view.ts'
import type { NodeState } from '../../wire/state.ts'
import type { RouteRegistrar } from '../server.ts'

export interface NodeIdentity {
  peerId: string
  addrs: string[]
  group: string | null
  state: NodeState
  spare: boolean
  version: string
  /** Peers that proved our cluster secret, and peers that failed it (none proven and some refused: this node is in no cluster with them). */
  secret: { provenPeers: number, refusedPeers: number }
}

export interface ClusterApi {
  identity(): NodeIdentity
  members(): MemberRecord[]
  groups(): GroupView[]
  isConnected(peerId: string): boolean
  /** Target members per group (this node's --group-size). */
  groupSize(): number
}

/** WebSocket addresses (with /p2p/) of this node and the other live members: what a browser can dial. */
export function browserBootstrap (self: NodeIdentity, members: MemberRecord[]): Array<{ peerId: string, addrs: string[] }> {
  const ws = (addrs: string[]): string[] => addrs.filter(a => /\/wss?(\/|$)/.test(a))
  const others = members.filter(m => !m.self && m.state !== 'OFFLINE' && ws(m.addrs).length > 0)
  return [{ peerId: self.peerId, addrs: ws(self.addrs) }, ...others.map(m => ({ peerId: m.peerId, addrs: ws(m.addrs) }))]
    .filter(p => p.addrs.length > 0)
}

export interface GroupHealth {
  target: number
  active: number
  syncing: number
  offline: number
  /** healthy: ≥ target ACTIVE; repairing: short but a member is catching up; degraded: short. */
  state: 'healthy' | 'repairing' | 'degraded'
}

export function groupHealth (members: MemberRecord[], target: number): GroupHealth {
  const count = (state: string): number => members.filter(m => m.state === state).length
  const active = count('ACTIVE')
  const syncing = count('SYNCING') + count('JOINING')
  return { target, active, syncing, offline: count('OFFLINE'), state: active >= target ? 'healthy' : syncing > 0 ? 'repairing' : 'degraded' }
}

/**
 * A group's copies, from its members' heartbeats: the files it holds (the
 * most any live member holds), how many of them have fewer copies than the
 * group's target (all of them while fewer members than the target are live;
 * else what the emptiest live member still lacks), and how many cannot be
 * healed (no member holds a good copy of one of their chunks).
 */
export function groupCopies (members: MemberRecord[], target: number): { files: number, belowTarget: number, damaged: number } {
  const live = members.filter(m => m.state === 'ACTIVE' || m.state === 'SYNCING')
  const files = Math.max(0, ...members.map(m => m.sync.files ?? 0))
  const belowTarget = live.length < target ? files : Math.max(0, ...live.map(m => files - (m.sync.files ?? files)))
  return { files, belowTarget, damaged: Math.max(0, ...members.map(m => m.sync.damaged ?? 0)) }
}

function memberJson (m: MemberRecord, now: number): Record<string, unknown> {
  return {
    peerId: m.peerId,
    state: m.state,
    addrs: m.addrs,
    free: m.free,
    total: m.total,
    load: m.load,
    version: m.version,
    sync: m.sync,
    spare: m.spare,
    lastSeenMsAgo: Math.max(0, now - m.lastSeen),
    // Its clock minus ours (ms), from its last heartbeat; beyond CLOCK_SKEW_WARN_MS `dsm groups` flags it.
    ...(m.skewMs != null ? { skewMs: m.skewMs } : {})
  }
}

export function clusterRoutes (api: ClusterApi): RouteRegistrar {
  return (app) => {
    app.get('/healthz', async () => {
      const { state, group } = api.identity()
      return { ok: true, state, group }
    })
    app.get('/api/id', async () => api.identity())
    app.get('/api/peers', async () => {
      const now = monotonicNow()
      return api.members().map(m => ({
        ...memberJson(m, now),
        group: m.group,
        self: m.self,
        connected: m.self || api.isConnected(m.peerId),
        confirmed: m.confirmed
      }))
    })
    app.get('/api/bootstrap', async () => ({ peers: browserBootstrap(api.identity(), api.members()) }))
    app.get('/api/groups', async () => {
      const now = monotonicNow()
      return api.groups().map(({ name, members }) => ({ name, health: groupHealth(members, api.groupSize()), copies: groupCopies(members, api.groupSize()), members: members.map(m => memberJson(m, now)) }))
    })
  }
}
