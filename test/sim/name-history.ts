/**
 * A history checker for keys (the S3 workload of the fault simulation):
 * every write of a key is recorded with when it was asked and when it was
 * answered, and whether it was acknowledged, refused (nothing written) or
 * uncertain (it failed in a way that may have written it). After the cluster
 * healed, the value every node reads for the key must be one that a
 * linearizable register could hold:
 *
 *   - the value of an acknowledged or uncertain write (or "absent": the
 *     initial state, or a delete), that
 *   - no acknowledged write superseded in real time (one asked after it was
 *     answered).
 *
 * So an acknowledged PUT is visible with its latest value, an acknowledged
 * DELETE stays deleted, and nothing never written appears. Pure: the
 * simulation feeds it and asks it.
 */

/** A value: the sha256 of the bytes written, or undefined for "absent" (deleted, or never written). */
export type KeyValue = string | undefined

export type Outcome = 'acked' | 'refused' | 'uncertain'

interface Write { value: KeyValue, askedAt: number, answeredAt: number, outcome: Outcome }

export class KeyHistory {
  private readonly writes = new Map<string, Write[]>()
  private clock = 0

  /** A logical time for "asked" and "answered" (strictly increasing). */
  now (): number {
    return ++this.clock
  }

  record (key: string, value: KeyValue, askedAt: number, answeredAt: number, outcome: Outcome): void {
    let list = this.writes.get(key)
    if (list == null) this.writes.set(key, list = [])
    list.push({ value, askedAt, answeredAt, outcome })
  }

  keys (): string[] {
    return [...this.writes.keys()]
  }

  /**
   * Values a read of `key` asked at `askedAt` and answered at `answeredAt`
   * may return (default: after everything was answered): those of writes
   * asked before the read was answered, that no acknowledged write asked
   * after them had superseded before the read was asked.
   */
  allowed (key: string, askedAt = Infinity, answeredAt = Infinity): KeyValue[] {
    // The initial state is an acknowledged "absent" before anything.
    const writes: Write[] = [{ value: undefined, askedAt: 0, answeredAt: 0, outcome: 'acked' }, ...(this.writes.get(key) ?? [])]
    const acked = writes.filter(w => w.outcome === 'acked')
    const candidates = writes.filter(w => w.outcome !== 'refused' && w.askedAt < answeredAt &&
      !acked.some(a => a.askedAt > w.answeredAt && a.answeredAt < askedAt))
    return [...new Set(candidates.map(w => w.value))]
  }

  /** Why `seen` is not a value `key` may hold (for a read asked and answered then), or undefined if it is. */
  check (key: string, seen: KeyValue, askedAt = Infinity, answeredAt = Infinity): string | undefined {
    const allowed = this.allowed(key, askedAt, answeredAt)
    if (allowed.includes(seen)) return undefined
    const show = (v: KeyValue): string => v?.slice(0, 12) ?? 'absent'
    const history = (this.writes.get(key) ?? []).map(w => `${show(w.value)} ${w.outcome} [${w.askedAt}, ${w.answeredAt}]`).join('; ')
    const when = Number.isFinite(askedAt) ? ` [${askedAt}, ${answeredAt}]` : ''
    return `key ${key}: read ${show(seen)}${when}, allowed ${allowed.map(show).join(' | ')}; writes: ${history}`
  }
}
