/**
 * A sealed heartbeat: the member's own heartbeat, signed with its peer key,
 * then encrypted and authenticated with the cluster secret (one box per
 * secret it holds, see ClusterKeys.box).
 *
 *   sealed = { boxes: [AES-GCM_secret_i({ body: CBOR(Heartbeat), sig: Ed25519(peer key, "dsm heartbeat v1 " body) })] }
 *
 * Only a holder of the secret can make a heartbeat that counts, or read one:
 * a stranger that reaches the gossip mesh learns neither members, groups nor
 * addresses. The signature makes a record relayed by another node (a
 * `/dsm/members` answer, a joiner's first view) provably the member's own
 * words, so no node can describe another. On gossip the signature is not
 * checked again: gossipsub already verified that the sender signed the whole
 * message, and the body must name that sender.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { HEARTBEAT_MAX_BYTES } from '../constants.ts'
import { decodeMessage, encodeMessage } from '../wire/codec.ts'
import { HeartbeatSchema, SealedHeartbeatSchema, SignedHeartbeatSchema } from '../wire/messages.ts'
import type { ClusterKeys } from '../net/cluster-secret.ts'
import type { Heartbeat } from '../wire/messages.ts'
import type { PrivateKey } from '@libp2p/interface'

const SIGN_PREFIX = new TextEncoder().encode('dsm heartbeat v1 ')

export type OpenResult =
  | { ok: true, heartbeat: Heartbeat, sealed: Uint8Array }
  | { ok: false, reason: 'oversized' | 'malformed' | 'unproven' | 'forged', detail: string }

const toSign = (body: Uint8Array): Uint8Array => {
  const out = new Uint8Array(SIGN_PREFIX.byteLength + body.byteLength)
  out.set(SIGN_PREFIX)
  out.set(body, SIGN_PREFIX.byteLength)
  return out
}

export class HeartbeatSeal {
  private readonly keys: ClusterKeys
  private readonly privateKey: PrivateKey

  constructor (keys: ClusterKeys, privateKey: PrivateKey) {
    this.keys = keys
    this.privateKey = privateKey
  }

  async seal (hb: Heartbeat): Promise<Uint8Array> {
    const body = encodeMessage(HeartbeatSchema, hb)
    const signed = encodeMessage(SignedHeartbeatSchema, { body, sig: await this.privateKey.sign(toSign(body)) })
    return encodeMessage(SealedHeartbeatSchema, { boxes: this.keys.box('heartbeat', signed) })
  }

  /**
   * Check a sealed heartbeat. `signer`: the peer gossipsub verified as its
   * author (the signature need not be checked again); absent for relayed
   * records, whose signature is checked here.
   */
  async open (bytes: Uint8Array, signer?: string): Promise<OpenResult> {
    if (bytes.byteLength > HEARTBEAT_MAX_BYTES) return { ok: false, reason: 'oversized', detail: `${bytes.byteLength} bytes > ${HEARTBEAT_MAX_BYTES}` }
    let boxes: Uint8Array[]
    try {
      boxes = decodeMessage(SealedHeartbeatSchema, bytes, HEARTBEAT_MAX_BYTES).boxes
    } catch (err) {
      return { ok: false, reason: 'malformed', detail: (err as Error).message }
    }
    const opened = this.keys.unbox('heartbeat', boxes)
    if (opened == null) return { ok: false, reason: 'unproven', detail: 'not sealed with the cluster secret' }
    let heartbeat: Heartbeat
    let signed
    try {
      signed = decodeMessage(SignedHeartbeatSchema, opened, HEARTBEAT_MAX_BYTES)
      heartbeat = decodeMessage(HeartbeatSchema, signed.body, HEARTBEAT_MAX_BYTES)
    } catch (err) {
      // Sealed by a holder of the secret, yet malformed: a bug or a bad member, either way not a heartbeat.
      return { ok: false, reason: 'malformed', detail: (err as Error).message }
    }
    if (signer != null) {
      if (heartbeat.peer !== signer) return { ok: false, reason: 'forged', detail: `claims ${heartbeat.peer} but signed by ${signer}` }
      return { ok: true, heartbeat, sealed: bytes }
    }
    let valid = false
    try {
      const key = peerIdFromString(heartbeat.peer).publicKey
      valid = key != null && await key.verify(toSign(signed.body), signed.sig)
    } catch {}
    if (!valid) return { ok: false, reason: 'forged', detail: `record of ${heartbeat.peer.slice(-8)} is not signed by it` }
    return { ok: true, heartbeat, sealed: bytes }
  }
}
