/**
 * Node lifecycle: JOINING (choosing/confirming a group) → SYNCING (catching up
 * with the group log) → ACTIVE (a full replica). OFFLINE is how peers see a
 * node that left or went silent; a node also announces OFFLINE when it stops.
 */
export const NODE_STATES = ['JOINING', 'SYNCING', 'ACTIVE', 'OFFLINE'] as const
export type NodeState = typeof NODE_STATES[number]

const ALLOWED: Record<NodeState, readonly NodeState[]> = {
  JOINING: ['SYNCING', 'ACTIVE', 'OFFLINE'],
  SYNCING: ['ACTIVE', 'JOINING', 'OFFLINE'],
  // An ACTIVE member that falls behind (e.g. after a recruit into another group) syncs again.
  ACTIVE: ['SYNCING', 'JOINING', 'OFFLINE'],
  OFFLINE: ['JOINING', 'SYNCING', 'ACTIVE']
}

export function canTransition (from: NodeState, to: NodeState): boolean {
  return from === to || ALLOWED[from].includes(to)
}
