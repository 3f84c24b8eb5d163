/**
 * The browser node's keys, made without multiplying a curve's base point in
 * JS. @noble/curves makes [k]B from a table of B's multiples that it builds
 * on first use: ~7 MiB of BigInt garbage, more than half of all the engine
 * allocated while starting, and why a collection fell on the player's first
 * frame (docs/performance.md, "The path to the first frame"). So Noise's
 * X25519 keys take the Montgomery ladder (as each key agreement does anyway,
 * with no table), and the tab's Ed25519 identity key is made by WebCrypto
 * where the browser has Ed25519 (@libp2p/crypto signs and verifies with
 * WebCrypto there already).
 */
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import { pureJsCrypto } from '@libp2p/noise'
import { x25519 } from '@noble/curves/ed25519.js'
import { fromString } from 'uint8arrays/from-string'
import type { PrivateKey } from '@libp2p/interface'
import type { ICryptoInterface } from '@libp2p/noise'

/** X25519's base point, u = 9. */
const BASE_U = Uint8Array.from({ length: 32 }, (_, i) => i === 0 ? 9 : 0)

/** Noise's crypto, its X25519 public keys by the ladder rather than by noble's fixed-base table. */
export const ladderCrypto: ICryptoInterface = {
  ...pureJsCrypto,
  generateX25519KeyPair () {
    const privateKey = x25519.utils.randomSecretKey()
    return { privateKey, publicKey: x25519.scalarMult(privateKey, BASE_U) }
  },
  generateX25519KeyPairFromSeed (seed) {
    return { privateKey: seed, publicKey: x25519.scalarMult(seed, BASE_U) }
  }
}

/** A new Ed25519 key from WebCrypto; undefined where the browser has none (libp2p then makes one in JS). */
export async function webCryptoKey (): Promise<PrivateKey | undefined> {
  let jwk: JsonWebKey
  try {
    const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']) as CryptoKeyPair
    jwk = await crypto.subtle.exportKey('jwk', pair.privateKey)
  } catch {
    return undefined
  }
  if (jwk.d == null || jwk.x == null) return undefined
  // libp2p's raw Ed25519 private key: the 32-byte seed, then the public key.
  const raw = new Uint8Array(64)
  raw.set(fromString(jwk.d, 'base64url'), 0)
  raw.set(fromString(jwk.x, 'base64url'), 32)
  return privateKeyFromRaw(raw)
}
