/**
 * ListObjects (v1 and v2) on top of the namespace's key pages: prefix,
 * delimiter (keys folded into common prefixes), a start (start-after, a
 * marker or a continuation token) and max-keys. Keys come in raw byte order;
 * a common prefix is skipped past whole (no key inside it is read twice).
 */
import type { ListedKey } from '../replica/namespace.ts'

/** Past every key that starts with `p` (U+10FFFF is the largest code point: its UTF-8 bytes sort after any other). */
export function pastPrefix (p: string): string {
  return `${p}\u{10FFFF}`
}

export interface ListQuery {
  prefix: string
  delimiter: string
  /** List keys strictly after this. */
  after: string
  maxKeys: number
}

export interface ListResult {
  contents: ListedKey[]
  commonPrefixes: string[]
  truncated: boolean
  /** Where the next page starts (exclusive): the last key or common prefix marker returned. */
  next?: string
}

/** Fetch pages of keys strictly after a key (and at or after `prefix`). */
export type KeyPages = (after: string, limit: number) => Promise<{ keys: ListedKey[], next?: string }>

export async function listKeys (page: KeyPages, q: ListQuery): Promise<ListResult> {
  const contents: ListedKey[] = []
  const commonPrefixes: string[] = []
  if (q.maxKeys === 0) return { contents, commonPrefixes, truncated: false }
  // Start at the prefix: every key before it is skipped without being read.
  let after = q.after
  if (q.prefix !== '' && Buffer.compare(Buffer.from(after), Buffer.from(q.prefix)) < 0) after = beforePrefix(q.prefix)
  let last: string | undefined
  for (;;) {
    const { keys, next } = await page(after, Math.min(1000, q.maxKeys + 1))
    let skipped = false
    for (const k of keys) {
      if (!k.key.startsWith(q.prefix)) {
        // Below the prefix (between the start bound and it): skip; past it: the listing is complete.
        if (Buffer.compare(Buffer.from(k.key), Buffer.from(q.prefix)) < 0) { after = k.key; continue }
        return { contents, commonPrefixes, truncated: false }
      }
      if (contents.length + commonPrefixes.length >= q.maxKeys) return { contents, commonPrefixes, truncated: true, ...(last != null ? { next: last } : {}) }
      const rest = k.key.slice(q.prefix.length)
      const cut = q.delimiter === '' ? -1 : rest.indexOf(q.delimiter)
      if (cut === -1) {
        contents.push(k)
        last = after = k.key
        continue
      }
      // Keys inside this common prefix are not read: the next page starts past it.
      commonPrefixes.push(q.prefix + rest.slice(0, cut + q.delimiter.length))
      last = after = pastPrefix(commonPrefixes.at(-1) as string)
      skipped = true
      break
    }
    if (!skipped && next == null) return { contents, commonPrefixes, truncated: false }
  }
}

/** A bound just below every key that starts with `p`: listing strictly after it starts at p itself. */
function beforePrefix (p: string): string {
  const cp = p.codePointAt(p.length - 1) ?? 0
  const head = p.slice(0, p.length - (cp > 0xffff ? 2 : 1))
  if (cp === 0) return head
  const below = cp - 1 >= 0xd800 && cp - 1 <= 0xdfff ? 0xd7ff : cp - 1
  return `${head}${String.fromCodePoint(below)}\u{10FFFF}`
}
