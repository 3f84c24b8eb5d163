/** `dsm stat`: a file's metadata and, for every member of its group, whether it holds a copy. */
import { askLocate } from '../wire/locate.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { answerLocate } from '../dht/locate.ts'
import type { Located } from '../dht/locate.ts'
import type { MembershipView } from '../membership/view.ts'
import type { NodeState } from '../wire/state.ts'
import type { LocalStore } from '../store/local-store.ts'
import type { Dialer } from '../wire/rpc.ts'
import type { AbortOptions } from '@libp2p/interface'

export type CopyState = 'present' | 'pending' | 'deleted' | 'unknown' | 'unreachable'

export interface ReplicaStat {
  peerId: string
  /** The member's state in the group. */
  state: NodeState
  /** What the member says about its copy: present, pending (being fetched or repaired), … */
  copy: CopyState
}

export interface FileStat {
  id: string
  size: number
  name: string
  mime: string
  chunks: number
  chunkSize: number
  createdAt: number
  group: string
  replicas: ReplicaStat[]
  /** Members holding a whole, verified copy now. */
  copies: number
  /**
   * No member holds a whole copy and every member answered: a chunk has no
   * good copy left in the group. The file is not served (its bytes cannot be
   * verified); restore it from a backup or upload it again.
   */
  damaged: boolean
}

export interface StatComponents {
  view: MembershipView
  store: LocalStore
  dialer: Dialer
}

async function copyAt (c: StatComponents, peer: string, self: boolean, id: string, options: AbortOptions): Promise<CopyState> {
  if (self) return answerLocate(c.store.index, id).state
  try {
    return (await askLocate(c.dialer, peerIdFromString(peer), id, options)).state
  } catch {
    return 'unreachable'
  }
}

export async function statFile (c: StatComponents, located: Located, options: AbortOptions = {}): Promise<FileStat> {
  const { manifest, group, createdAt } = located
  const id = manifest.id.toString()
  const members = c.view.groupMembers(group)
  const replicas = await Promise.all(members.map(async m => ({
    peerId: m.peerId,
    state: m.state,
    copy: m.state === 'OFFLINE' ? 'unreachable' as const : await copyAt(c, m.peerId, m.self, id, options)
  })))
  return {
    id,
    size: manifest.size,
    name: manifest.name,
    mime: manifest.mime,
    chunks: manifest.chunks.length,
    chunkSize: manifest.chunkSize,
    createdAt,
    group,
    replicas,
    copies: replicas.filter(r => r.copy === 'present').length,
    damaged: replicas.length > 0 && replicas.every(r => r.copy === 'pending')
  }
}
