/** A small seeded PRNG (mulberry32): the same seed gives the same fault schedule. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number
  /** Integer in [0, n). */
  int(n: number): number
  pick<T>(items: readonly T[]): T
  /** `n` pseudo-random bytes. */
  bytes(n: number): Uint8Array<ArrayBuffer>
}

export function createRng (seed: number): Rng {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from an empty list')
      return items[Math.floor(next() * items.length)] as (typeof items)[number]
    },
    bytes: (n) => {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i += 4) {
        const v = (next() * 4294967296) >>> 0
        out[i] = v & 0xff
        if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff
        if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff
        if (i + 3 < n) out[i + 3] = v >>> 24
      }
      return out
    }
  }
}
