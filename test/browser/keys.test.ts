/**
 * The browser node's keys (src/browser/keys.ts) are the keys the JS defaults
 * would make: Noise's X25519 public keys by the ladder equal noble's
 * fixed-base ones, and the WebCrypto Ed25519 key is a working libp2p key.
 */
import { generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { pureJsCrypto } from '@libp2p/noise'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { x25519 } from '@noble/curves/ed25519.js'
import { describe, expect, it } from 'vitest'
import { ladderCrypto, webCryptoKey } from '../../src/browser/keys.ts'

describe('browser keys', () => {
  it('makes the X25519 public keys the fixed-base path makes, and the same shared secrets', () => {
    for (let i = 0; i < 16; i++) {
      const a = ladderCrypto.generateX25519KeyPair()
      expect(a.publicKey).toEqual(x25519.getPublicKey(a.privateKey))
      const seed = x25519.utils.randomSecretKey()
      expect(ladderCrypto.generateX25519KeyPairFromSeed(seed).publicKey).toEqual(pureJsCrypto.generateX25519KeyPairFromSeed(seed).publicKey)
      const b = pureJsCrypto.generateX25519KeyPair()
      expect(ladderCrypto.generateX25519SharedKey(a.privateKey, b.publicKey)).toEqual(pureJsCrypto.generateX25519SharedKey(b.privateKey, a.publicKey))
    }
  })

  it('makes an Ed25519 libp2p key with WebCrypto whose public half and signatures check out', async () => {
    const key = await webCryptoKey()
    if (key == null) throw new Error('this runtime has WebCrypto Ed25519 (Node 24 does): webCryptoKey must make a key')
    expect(key.type).toBe('Ed25519')
    // The public half is the one the seed gives (the same peer ID as a key made in JS from that seed).
    const again = await generateKeyPairFromSeed('Ed25519', key.raw.subarray(0, 32))
    expect(again.publicKey.equals(key.publicKey)).toBe(true)
    expect(peerIdFromPrivateKey(again).toString()).toBe(peerIdFromPrivateKey(key).toString())
    const msg = new TextEncoder().encode('dsm')
    const sig = await key.sign(msg)
    expect(await publicKeyFromRaw(key.publicKey.raw).verify(msg, sig)).toBe(true)
    expect(await key.publicKey.verify(new TextEncoder().encode('dsn'), sig)).toBe(false)
  })
})
