/**
 * Gossipsub peer scoring for dsm's one topic, the membership heartbeats.
 * A heartbeat the validator rejects (forged sender, malformed, oversized,
 * flooding) is an "invalid message delivery": each costs its sender
 * INVALID_WEIGHT × count², so three in a short while push it below the
 * graylist threshold and gossipsub ignores it until the penalty decays
 * (half of it per decay interval). Clock skew is no reason to reject a
 * heartbeat (membership/heartbeat.ts), so it costs an honest peer nothing.
 *
 * Delivery-rate scores (mesh and first deliveries) stay off: heartbeats come
 * every few seconds, far below any delivery threshold worth calibrating, and
 * they would punish honest idle peers. IP colocation stays off too: a dsm
 * cluster often runs many nodes behind one address (one host, a NAT, tests).
 */
import { createPeerScoreParams, createPeerScoreThresholds } from '@libp2p/gossipsub/score'
import { MEMBERSHIP_TOPIC } from '../constants.ts'
import type { PeerScoreParams, PeerScoreThresholds } from '@libp2p/gossipsub/score'

const INVALID_WEIGHT = -10
/**
 * A peer that has not proven the cluster secret scores below zero and below
 * the gossip threshold: no mesh takes it and no gossip goes to it, so
 * strangers cannot crowd members out of each other's meshes. It stays above
 * the publish and graylist thresholds: a member's first RPC (its
 * subscriptions, its heartbeats) arrives a few ms before its proof and is
 * cached with this score for up to a second, and must still count. What a
 * stranger may receive meanwhile is encrypted (membership/seal.ts), and each
 * heartbeat of its own fails the seal check: a rejection that costs it
 * INVALID_WEIGHT × count² more.
 */
export const UNPROVEN_PEER_SCORE = -20

export function gossipScoreParams (isProven: (peer: string) => boolean): PeerScoreParams {
  return createPeerScoreParams({
    appSpecificScore: (peer) => isProven(peer) ? 0 : UNPROVEN_PEER_SCORE,
    appSpecificWeight: 1,
    IPColocationFactorWeight: 0,
    topics: {
      [MEMBERSHIP_TOPIC]: {
        topicWeight: 1,
        timeInMeshWeight: 0,
        timeInMeshQuantum: 1000,
        timeInMeshCap: 0,
        firstMessageDeliveriesWeight: 0,
        firstMessageDeliveriesDecay: 0.5,
        firstMessageDeliveriesCap: 0,
        meshMessageDeliveriesWeight: 0,
        meshMessageDeliveriesDecay: 0.5,
        meshMessageDeliveriesCap: 0,
        meshMessageDeliveriesThreshold: 0,
        meshMessageDeliveriesWindow: 10,
        meshMessageDeliveriesActivation: 5000,
        meshFailurePenaltyWeight: 0,
        meshFailurePenaltyDecay: 0.5,
        invalidMessageDeliveriesWeight: INVALID_WEIGHT,
        invalidMessageDeliveriesDecay: 0.5
      }
    }
  })
}

/** libp2p's defaults, named here so the README can quote them: gossip -10, publish -50, graylist -80. */
export function gossipScoreThresholds (): PeerScoreThresholds {
  return createPeerScoreThresholds({ gossipThreshold: -10, publishThreshold: -50, graylistThreshold: -80 })
}
