/**
 * Who may do what over HTTP.
 *  - Writes (upload, delete, minting signed URLs) need the cluster token as
 *    `Authorization: Bearer TOKEN`, unless the node runs `--open`.
 *  - Downloads are public, unless the node runs `--signed-urls`: then a GET
 *    needs `?expires=UNIX_SECONDS&sig=…` (or the token), like FastDFS's
 *    anti-leech token. The signature is an HMAC-SHA256 of the file ID and the
 *    expiry, keyed by a key derived from the token, so a URL minted by one node
 *    works on every node that shares the token.
 * Tokens and signatures are compared in constant time.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { BadRequestError, InvalidConfigError, UnauthorizedError, UrlExpiredError, UrlSignatureError } from '../errors.ts'

/** Lifetime of a signed download URL when the signer asks for none. */
export const DEFAULT_SIGNED_URL_TTL_S = 3_600
/** Longest lifetime a signed URL may have (a week): a leaked link must die. */
export const MAX_SIGNED_URL_TTL_S = 7 * 24 * 3_600

export interface AuthInit {
  /** null: the node is open (`--open`), nobody needs a token. */
  token: string | null
  signedUrls: boolean
}

export interface SignedUrl { path: string, expires: number }

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest()

export class HttpAuth {
  readonly open: boolean
  readonly signedUrls: boolean
  private readonly tokenHash?: Buffer
  private readonly urlKey?: Buffer

  constructor (init: AuthInit) {
    this.open = init.token == null
    this.signedUrls = init.signedUrls
    if (init.signedUrls && init.token == null) throw new InvalidConfigError('signed URLs need a cluster token: they cannot be used with --open')
    if (init.token != null) {
      this.tokenHash = sha256(init.token)
      this.urlKey = createHmac('sha256', init.token).update('dsm signed download urls v1').digest()
    }
  }

  /** True when the request carries the token (always true on an open node). */
  hasToken (authorization: string | undefined): boolean {
    if (this.tokenHash == null) return true
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')
    // Hashing first gives equal lengths, so timingSafeEqual never throws and leaks no length.
    return m?.[1] != null && timingSafeEqual(sha256(m[1]), this.tokenHash)
  }

  /** Throws UnauthorizedError unless the request may write. */
  requireToken (authorization: string | undefined): void {
    if (this.hasToken(authorization)) return
    throw new UnauthorizedError(authorization == null
      ? 'this node needs the cluster token for writes: send "Authorization: Bearer TOKEN" (dsm: --token or DSM_TOKEN)'
      : 'wrong cluster token')
  }

  /** A download URL for `id`, valid `ttlS` seconds from `nowMs`. */
  sign (id: string, ttlS = DEFAULT_SIGNED_URL_TTL_S, nowMs = Date.now()): SignedUrl {
    if (this.urlKey == null) throw new BadRequestError('an open node (--open) has no token to sign URLs with')
    if (!Number.isInteger(ttlS) || ttlS < 1 || ttlS > MAX_SIGNED_URL_TTL_S) throw new BadRequestError(`ttl must be whole seconds from 1 to ${MAX_SIGNED_URL_TTL_S}`)
    const expires = Math.floor(nowMs / 1000) + ttlS
    return { path: `/files/${id}?expires=${expires}&sig=${this.signature(id, expires)}`, expires }
  }

  /** Throws unless a download of `id` is allowed: no signed URLs needed, the token, or a valid unexpired signature. */
  checkDownload (id: string, query: { expires?: string, sig?: string }, authorization: string | undefined, nowMs = Date.now()): void {
    if (!this.signedUrls || (!this.open && this.hasToken(authorization))) return
    if (query.expires == null || query.sig == null) throw new UrlSignatureError('this node serves files through signed URLs only: ask a token holder for one (POST /api/sign)')
    const expires = /^\d{1,12}$/.test(query.expires) ? Number(query.expires) : NaN
    const given = Buffer.from(query.sig, 'base64url')
    const wanted = Number.isFinite(expires) ? Buffer.from(this.signature(id, expires), 'base64url') : undefined
    // Check the signature before the expiry: "expired" must not confirm that a forged URL was well formed.
    if (wanted == null || given.byteLength !== wanted.byteLength || !timingSafeEqual(given, wanted)) throw new UrlSignatureError('the URL signature does not match this file and expiry')
    if (expires * 1000 <= nowMs) throw new UrlExpiredError(`the URL expired at ${new Date(expires * 1000).toISOString()}`)
  }

  private signature (id: string, expires: number): string {
    // Unreachable without a key (the constructor refuses signed URLs on an open node); never sign with a default key.
    if (this.urlKey == null) throw new UrlSignatureError('this node has no token to check signatures with')
    return createHmac('sha256', this.urlKey).update(`${id}\n${expires}`).digest('base64url')
  }
}
