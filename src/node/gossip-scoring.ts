/**
 * Gossipsub peer scoring for dsm's one topic, the membership heartbeats.
 * A heartbeat the validator rejects (forged sender, malformed, oversized,
 * flooding) is an "invalid message delivery": each costs its sender
 * INVALID_WEIGHT × count², so three in a short while push it below the
 * graylist threshold and gossipsub ignores it until the penalty decays
 * (half of it per decay interval). Honest clock skew is ignored, not
 * rejected (see membership/service.ts), so it costs nothing.
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

export function gossipScoreParams (): PeerScoreParams {
  return createPeerScoreParams({
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
