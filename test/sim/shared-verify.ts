/**
 * One CPU plays hundreds of hosts in the simulation, and each gossiped
 * heartbeat is signature-checked by every simulated host: N² checks per
 * period, where a real cluster does N per host, in parallel. The result of a
 * check is a pure function of (key, data, signature), so the simulation lets
 * the first host that checks a signature do the work and the others reuse the
 * answer — the same answer each would compute, checked by byte comparison.
 * Only `npm run sim` installs this; tests run every check themselves.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'

type Verify = (data: Uint8Array, sig: Uint8Array, options?: unknown) => boolean | Promise<boolean>

/** Answers kept (a heartbeat is ~300 bytes: a few MiB at most). */
const MAX_REMEMBERED_CHECKS = 20_000

let installed = false
let reused = 0

export const sharedSignatureChecks = (): number => reused

export async function shareSignatureChecks (): Promise<void> {
  if (installed) return
  installed = true
  const proto = Object.getPrototypeOf((await generateKeyPair('Ed25519')).publicKey) as { verify: Verify }
  const verify = proto.verify
  const answers = new Map<string, { key: Uint8Array, data: Uint8Array, valid: boolean }>()
  proto.verify = function (this: { raw: Uint8Array }, data: Uint8Array, sig: Uint8Array, options?: unknown) {
    if (!(data instanceof Uint8Array) || !(sig instanceof Uint8Array)) return verify.call(this, data, sig, options)
    const id = Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).toString('base64')
    const known = answers.get(id)
    if (known != null && Buffer.compare(known.key, this.raw) === 0 && Buffer.compare(known.data, data) === 0) {
      reused++
      return known.valid
    }
    const result = verify.call(this, data, sig, options)
    const remember = (valid: boolean): boolean => {
      answers.set(id, { key: this.raw, data: Uint8Array.from(data), valid })
      if (answers.size > MAX_REMEMBERED_CHECKS) answers.delete(answers.keys().next().value as string)
      return valid
    }
    return typeof result === 'boolean' ? remember(result) : result.then(remember)
  }
}
