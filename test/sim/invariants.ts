/**
 * What the simulation checks on a healed cluster (see ./scenario.ts), and the
 * diagnostics it logs when a check fails.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { SimCluster } from './cluster.ts'

/** Every running node sees the same members, groups and states, all of them ACTIVE, every node included. */
export function viewsAgree (c: SimCluster): boolean {
  const up = c.upIndexes()
  const key = (i: number): string => JSON.stringify(c.node(i).membership.view.members().map(m => [m.peerId, m.group, m.state]))
  const first = key(up[0] ?? 0)
  const members = c.node(up[0] ?? 0).membership.view.members()
  return up.every(i => key(i) === first) && members.every(m => m.state === 'ACTIVE') && members.length === c.size
}

/** No running node has files left to fetch. */
export function syncDone (c: SimCluster): boolean {
  return c.upIndexes().every(i => c.node(i).store.index.stats().pending.files === 0)
}

/**
 * Every member has pulled every group mate's log to its head: only then has
 * anti-entropy carried every operation (a delete pushed while a mate was cut
 * off reaches it by this pull, up to one sync period after the heal).
 */
export function logsPulled (c: SimCluster): boolean {
  return unpulled(c).length === 0
}

/** Pairs "i<j": node i has not pulled group mate j's log to its head. */
function unpulled (c: SimCluster): string[] {
  const up = c.upIndexes()
  return up.flatMap(i => up.filter(j => j !== i && c.node(j).status.group === c.node(i).status.group &&
    c.node(i).store.index.cursor(c.peerId(j)) < c.node(j).store.index.head()).map(j => `${i}<${j}`))
}

/** Every ACTIVE member of the file's group holds it (and there are at least min(target, members) of them). */
export function copiesAtTarget (c: SimCluster, id: string, target: number): boolean {
  const holders = c.upIndexes().filter(i => c.node(i).store.index.get(id)?.state === 'present')
  const group = holders.length > 0 ? c.node(holders[0] as number).status.group : undefined
  if (group == null) return false
  const members = c.upIndexes().filter(i => c.node(i).status.group === group)
  return members.every(i => holders.includes(i)) && holders.length >= Math.min(target, members.length)
}

/** What keeps the cluster from converging (for the log). */
export function divergence (c: SimCluster): string {
  const up = c.upIndexes()
  const notActive = up.filter(i => c.node(i).status.state !== 'ACTIVE').map(i => `${i}:${c.node(i).status.state}`)
  const pending = up.filter(i => c.node(i).store.index.stats().pending.files > 0).map(i => `${i}:${c.node(i).store.index.stats().pending.files}`)
  const pendingIds = new Set(up.flatMap(i => c.node(i).store.index.withState('pending').map(r => r.id)))
  const where = [...pendingIds].map(id => `${id.slice(-8)}: ${rowsOf(c, id)}`)
  return `not ACTIVE [${notActive.join(' ')}], logs not pulled [${unpulled(c).join(' ')}], pending [${pending.join(' ')}] {${where.join('; ')}}, ${views(c)}`
}

/** The distinct membership views and who holds each (the first three, for the log). */
function views (c: SimCluster): string {
  const byView = new Map<string, number[]>()
  for (const i of c.upIndexes()) {
    const k = c.node(i).membership.view.members().map(m => `${c.peerIds().indexOf(m.peerId)}${m.state[0] ?? ''}${m.group ?? '-'}`).join(',')
    byView.set(k, [...(byView.get(k) ?? []), i])
  }
  return `${byView.size} distinct views: ${[...byView.entries()].slice(0, 3).map(([k, v]) => `{${v.join(',')}} sees ${k}`).join(' | ')}`
}

/**
 * The connections between a reader and the holders of a file, as
 * direction+status/streams on each side (for the log). Only looks: a ping
 * here would open ping streams that libp2p's connection monitor counts
 * against its own, and it drops connections over that.
 */
export function linksOf (c: SimCluster, reader: number, id: string): string {
  const conns = (a: number, b: number): string => c.node(a).libp2p.getConnections(peerIdFromString(c.peerId(b)))
    .map(x => `${x.direction[0] ?? ''}${x.status}/${x.streams.length}`).join('+') || 'none'
  const holders = c.upIndexes().filter(i => i !== reader && c.node(i).store.index.get(id) != null)
  return `links: ${holders.map(h => `${h}(${c.node(h).store.index.get(id)?.state ?? '-'}): ${reader}->${h} ${conns(reader, h)}, ${h}->${reader} ${conns(h, reader)}`).join('; ')}`
}

/** Every running node's index row for a file: node(group state):state/group@ts/origin#seq (for the log). */
export function rowsOf (c: SimCluster, id: string): string {
  return c.upIndexes().flatMap(i => {
    const r = c.node(i).store.index.get(id)
    return r == null ? [] : [`${i}(${c.node(i).status.group ?? '-'} ${c.node(i).status.state}):${r.state}/${r.group}@${r.ts}/${c.peerIds().indexOf(r.origin)}#${r.seq}`]
  }).join(' ')
}
