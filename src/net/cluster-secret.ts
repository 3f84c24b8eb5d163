/**
 * The cluster secret: what makes a peer a member of this cluster rather than
 * a stranger. Every node of a cluster holds it (given by --secret-file,
 * DSM_SECRET or dsm.json; else the first node makes one and keeps it in
 * `<data>/secret`, mode 0600, and prints how to give it to the others).
 *
 * Nothing secret travels on the wire: keys are derived from it (HKDF-SHA256),
 * one for the per-connection challenge–response (./peer-auth.ts) and one
 * that encrypts and authenticates every heartbeat (./membership/seal.ts). A node may also hold
 * previous secrets: it proves itself with every key it holds and accepts any,
 * so a cluster rotates its secret node by node without downtime.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { InvalidConfigError, SecretRequiredError } from '../errors.ts'
import { atomicWriteFile } from '../util/fs.ts'

export const SECRET_FILE_NAME = 'secret'
/** A secret shorter than this is refused: it could be guessed offline from a captured handshake. */
export const MIN_SECRET_CHARS = 32
/** Secrets one node accepts at once (the current one and those being rotated out). */
export const MAX_SECRETS = 4
const SECRET_BYTES = 32
const KEY_BYTES = 32
/** A box: salt (a fresh key per message, so nonces can never repeat under one key) ‖ ciphertext ‖ GCM tag. */
const SALT_BYTES = 16
const TAG_BYTES = 16
const ZERO_IV = Buffer.alloc(12)
const BOX_AAD = Buffer.from('dsm box v1')

/** What a derived key is for: peer proofs, heartbeat seals, S3 secrets at rest (replica/access-keys.ts). */
export type KeyPurpose = 'auth' | 'heartbeat' | 'access-keys'

export interface ClusterSecretSource {
  /** The current secret (null: read or make `<data>/secret`). */
  secret: string | null
  /** Path of a file holding the current secret. */
  secretFile: string | null
  /** Older secrets still accepted during a rotation. */
  previousSecrets: string[]
  /** May a secret be made when none is configured or kept? Only for a new cluster (no --bootstrap, or --new-cluster). */
  mayCreate?: boolean
}

/** The keys a node derives from its secrets, and where the current secret came from. */
export class ClusterKeys {
  readonly source: 'config' | 'file' | 'generated'
  readonly path?: string
  /** The current secret as text (to hand to other nodes). */
  readonly secret: string
  private readonly keys: Record<KeyPurpose, Buffer[]>

  constructor (secrets: string[], source: ClusterKeys['source'], path?: string) {
    if (secrets.length === 0) throw new InvalidConfigError('a cluster needs a secret')
    this.secret = secrets[0] as string
    this.source = source
    if (path != null) this.path = path
    const derive = (purpose: KeyPurpose): Buffer[] => secrets.map(s => Buffer.from(hkdfSync('sha256', Buffer.from(s, 'utf8'), Buffer.alloc(0), `dsm ${purpose} v1`, KEY_BYTES)))
    this.keys = { auth: derive('auth'), heartbeat: derive('heartbeat'), 'access-keys': derive('access-keys') }
  }

  /** One MAC of `data` per secret held: the peer checks whichever it knows. */
  macs (purpose: KeyPurpose, data: Uint8Array): Uint8Array[] {
    return this.keys[purpose].map(k => createHmac('sha256', k).update(data).digest())
  }

  /**
   * Encrypt and authenticate `data` once per secret held (AES-256-GCM under a
   * key derived per message from a random salt): a peer opens whichever box
   * its secrets fit; a stranger learns nothing and can forge nothing.
   */
  box (purpose: KeyPurpose, data: Uint8Array): Uint8Array[] {
    return this.keys[purpose].map(k => {
      const salt = randomBytes(SALT_BYTES)
      const cipher = createCipheriv('aes-256-gcm', createHmac('sha256', k).update(salt).digest(), ZERO_IV).setAAD(BOX_AAD)
      return Buffer.concat([salt, cipher.update(data), cipher.final(), cipher.getAuthTag()])
    })
  }

  /** The contents of the first box a secret we hold opens, or undefined. */
  unbox (purpose: KeyPurpose, boxes: Uint8Array[]): Uint8Array | undefined {
    for (const box of boxes.slice(0, MAX_SECRETS)) {
      if (box.byteLength < SALT_BYTES + TAG_BYTES) continue
      const salt = box.subarray(0, SALT_BYTES)
      const body = box.subarray(SALT_BYTES, box.byteLength - TAG_BYTES)
      const tag = box.subarray(box.byteLength - TAG_BYTES)
      for (const k of this.keys[purpose]) {
        try {
          const decipher = createDecipheriv('aes-256-gcm', createHmac('sha256', k).update(salt).digest(), ZERO_IV).setAAD(BOX_AAD).setAuthTag(tag)
          return Buffer.concat([decipher.update(body), decipher.final()])
        } catch {
          // Not this key (the tag does not verify): try the next.
        }
      }
    }
    return undefined
  }

  /** True when one of `macs` is a MAC of `data` under a secret we hold. */
  verify (purpose: KeyPurpose, data: Uint8Array, macs: Uint8Array[]): boolean {
    for (const k of this.keys[purpose]) {
      const want = createHmac('sha256', k).update(data).digest()
      for (const mac of macs.slice(0, MAX_SECRETS)) {
        if (mac.byteLength === want.byteLength && timingSafeEqual(mac, want)) return true
      }
    }
    return false
  }
}

/** A new secret's text (`dsm secret` prints one). */
export function generateSecret (): string {
  return randomBytes(SECRET_BYTES).toString('base64url')
}

export function checkSecret (secret: string, where: string): string {
  const s = secret.trim()
  if (s.length < MIN_SECRET_CHARS || s.length > 512 || !/^[\x21-\x7e]+$/.test(s)) {
    throw new InvalidConfigError(`${where}: a cluster secret is ${MIN_SECRET_CHARS} to 512 printable characters without spaces (make one with: dsm secret)`)
  }
  return s
}

async function readSecretFile (path: string): Promise<string | undefined> {
  try {
    return checkSecret(await readFile(path, 'utf8'), path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    if (err instanceof InvalidConfigError) throw err
    throw new InvalidConfigError(`${path}: ${(err as Error).message}`)
  }
}

/**
 * The node's keys: from the configured secret or secret file, else from
 * `<data>/secret`, else a new secret kept there.
 */
export async function loadOrCreateClusterKeys (dataDir: string, src: ClusterSecretSource): Promise<ClusterKeys> {
  const previous = src.previousSecrets.map((s, i) => checkSecret(s, `previous secret ${i + 1}`))
  if (previous.length + 1 > MAX_SECRETS) throw new InvalidConfigError(`at most ${MAX_SECRETS - 1} previous secrets`)
  const all = (current: string): string[] => [current, ...previous.filter(p => p !== current)]
  if (src.secret != null) return new ClusterKeys(all(checkSecret(src.secret, 'secret')), 'config')
  if (src.secretFile != null) {
    const s = await readSecretFile(src.secretFile)
    if (s == null) throw new InvalidConfigError(`secret file ${src.secretFile} does not exist`)
    return new ClusterKeys(all(s), 'file', src.secretFile)
  }
  const path = join(dataDir, SECRET_FILE_NAME)
  const kept = await readSecretFile(path)
  if (kept != null) return new ClusterKeys(all(kept), 'file', path)
  if (src.mayCreate === false) {
    throw new SecretRequiredError('this node joins a cluster (--bootstrap) but has no cluster secret, and a node joining a cluster needs that cluster\'s secret: ' +
      'give it with DSM_SECRET=<secret> or --secret-file <file> (on a node of the cluster it is in <data>/secret), ' +
      'or start a new cluster with --new-cluster')
  }
  const made = generateSecret()
  await atomicWriteFile(path, `${made}\n`, 0o600)
  return new ClusterKeys(all(made), 'generated', path)
}
