/**
 * The commit rule of an upload (src/replica/commit.ts) with stubbed copies:
 * when the quorum is reached or lost, which error a lost quorum is, and who
 * hears the decision when. No node, no disk, no network.
 */
import { describe, expect, it, vi } from 'vitest'
import { DECISION_TIMEOUT_MS, announceAbort, announceCommit, outOfSpace, prepareQuorum } from '../../src/replica/commit.ts'
import { InsufficientStorageError, remoteError } from '../../src/errors.ts'
import type { CopyAttempt, QuorumPlan } from '../../src/replica/commit.ts'

// announceAbort's bounded wait is a node:timers/promises sleep (vi's fake timers do not reach it): each one is parked
// here for the test to end.
const sleeps = vi.hoisted(() => [] as Array<{ ms: number, end: () => void }>)
vi.mock('node:timers/promises', async (importOriginal) => ({
  ...await importOriginal<typeof import('node:timers/promises')>(),
  setTimeout: async (ms: number, value?: unknown) => new Promise(resolve => { sleeps.push({ ms, end: () => { resolve(value) } }) })
}))

/** A member's part in an upload; the test says when (and whether) it prepares. */
class StubCopy implements CopyAttempt {
  readonly peer: string
  prepared = false
  failure?: Error
  readonly decisions: boolean[] = []
  readonly prepare: Promise<void>
  private readonly ctl = Promise.withResolvers<void>()
  decideError?: Error

  constructor (peer: string) {
    this.peer = peer
    this.prepare = this.ctl.promise.then(() => { this.prepared = true }, (err: Error) => { this.failure = err; throw err })
    this.prepare.catch(() => {}) // the code under test handles it; a test that never looks must not see it unhandled
  }

  succeed (): void { this.ctl.resolve() }
  fail (err: Error = new Error(`${this.peer} went away`)): void { this.ctl.reject(err) }

  async decide (commit: boolean): Promise<void> {
    this.decisions.push(commit)
    if (this.decideError != null) throw this.decideError
  }
}

function copies (...peers: string[]): StubCopy[] {
  return peers.map(p => new StubCopy(`12D3KooW-peer-${p}`))
}

/** A promise's state, readable synchronously. */
function watch<T> (p: Promise<T>): { state: 'pending' | 'resolved' | 'rejected', value?: T, error?: Error } {
  const w: { state: 'pending' | 'resolved' | 'rejected', value?: T, error?: Error } = { state: 'pending' }
  p.then(v => { w.state = 'resolved'; w.value = v }, (e: Error) => { w.state = 'rejected'; w.error = e })
  return w
}

/** Let every settled promise run its reactions (no clock involved). */
const flush = async (): Promise<void> => { for (let i = 0; i < 10; i++) await Promise.resolve() }

/** How `p` stands once everything ready ran: a test fails here, rather than hang, when a promise never settles. */
async function outcome<T> (p: Promise<T>): Promise<ReturnType<typeof watch<T>>> {
  const w = watch(p)
  await flush()
  return w
}

const plan = (n: number, mustStore: string[] = []): QuorumPlan => ({ copies: n, mustStore: new Set(mustStore), group: 'g1' })

describe('prepareQuorum', () => {
  it('waits for the local prepare even once the members suffice, then returns the members prepared', async () => {
    const local = Promise.withResolvers<void>()
    const [a, b] = copies('a', 'b') as [StubCopy, StubCopy]
    const q = watch(prepareQuorum(local.promise, [a, b], [a.prepare, b.prepare], plan(3)))
    a.succeed()
    b.succeed()
    await flush()
    expect(q.state).toBe('pending')
    local.resolve()
    await flush()
    expect(q.state).toBe('resolved')
    expect(q.value).toEqual([a, b])
  })

  it('acknowledges at `copies` (ours included) without waiting for slower members', async () => {
    const [a, b, c] = copies('a', 'b', 'c') as [StubCopy, StubCopy, StubCopy]
    const q = watch(prepareQuorum(Promise.resolve(), [a, b, c], [a.prepare, b.prepare, c.prepare], plan(2)))
    await flush()
    expect(q.state).toBe('pending')
    b.succeed()
    await flush()
    expect(q.value).toEqual([b])
    c.succeed() // the others follow: nothing changes for the caller
    a.fail()
    await flush()
    expect(q.value).toEqual([b])
  })

  it('a quorum of one copy is ours alone', async () => {
    const [a] = copies('a') as [StubCopy]
    expect(await outcome(prepareQuorum(Promise.resolve(), [a], [a.prepare], plan(1)))).toEqual({ state: 'resolved', value: [] })
  })

  it('too few members for the copies: QuorumError at once, before anything settles', async () => {
    const [a] = copies('a') as [StubCopy]
    const { state, error } = await outcome(prepareQuorum(new Promise<void>(() => {}), [a], [a.prepare], plan(3)))
    expect(state).toBe('rejected')
    expect(error).toMatchObject({ name: 'QuorumError', code: 'ERR_QUORUM' })
    expect(error?.message).toContain('3 copies required in g1')
  })

  it('fails as soon as the members still possible cannot make the copies, naming a member lost', async () => {
    const [a, b, c] = copies('a', 'b', 'c') as [StubCopy, StubCopy, StubCopy]
    const q = watch(prepareQuorum(Promise.resolve(), [a, b, c], [a.prepare, b.prepare, c.prepare], plan(3)))
    b.fail(new Error('disk on fire'))
    await flush()
    expect(q.state).toBe('pending') // local + a + c can still make 3
    a.fail(new Error('connection reset'))
    await flush()
    expect(q.state).toBe('rejected')
    expect(q.error).toMatchObject({ name: 'QuorumError', code: 'ERR_QUORUM' })
    // The first member lost in session order (its id's last 8 characters) and why.
    expect(q.error?.message).toContain('W-peer-a: connection reset')
  })

  it('a member that must store (quorum "all") is waited for, and losing it fails the upload', async () => {
    const [a, b] = copies('a', 'b') as [StubCopy, StubCopy]
    const q = watch(prepareQuorum(Promise.resolve(), [a, b], [a.prepare, b.prepare], plan(2, [b.peer])))
    a.succeed()
    await flush()
    expect(q.state).toBe('pending') // two copies, but not the required one
    b.fail(new Error('crashed'))
    await flush()
    expect(q.error).toMatchObject({ name: 'QuorumError' })
    expect(q.error?.message).toMatch(/peer-b: crashed/)

    const [c, d] = copies('c', 'd') as [StubCopy, StubCopy]
    const ok = watch(prepareQuorum(Promise.resolve(), [c, d], [c.prepare, d.prepare], plan(2, [d.peer])))
    d.succeed()
    await flush()
    expect(ok).toEqual({ state: 'resolved', value: [d] })
  })

  it('a member out of space makes the failure a 507, not a quorum problem', async () => {
    const [a, b] = copies('a', 'b') as [StubCopy, StubCopy]
    const q = watch(prepareQuorum(Promise.resolve(), [a, b], [a.prepare, b.prepare], plan(3)))
    a.succeed()
    b.fail(remoteError('ERR_INSUFFICIENT_STORAGE', 'only 3 bytes free above the reserve'))
    await flush()
    const err = q.error
    expect(err).toBeInstanceOf(InsufficientStorageError)
    expect(err).toMatchObject({ name: 'InsufficientStorageError', code: 'ERR_INSUFFICIENT_STORAGE', message: 'only 3 bytes free above the reserve' })
  })

  it('our own prepare failing fails the upload with its error, whatever the members did', async () => {
    const [a] = copies('a') as [StubCopy]
    const local = Promise.withResolvers<void>()
    const q = watch(prepareQuorum(local.promise, [a], [a.prepare], plan(2)))
    a.succeed()
    const disk = Object.assign(new Error('EIO'), { code: 'EIO' })
    local.reject(disk)
    await flush()
    expect(q.error).toBe(disk)
    const odd = Promise.withResolvers<void>()
    odd.reject('not an Error') // made into one
    expect((await outcome(prepareQuorum(odd.promise, [], [], plan(1)))).error).toMatchObject({ name: 'Error', message: 'not an Error' })
  })
})

describe('outOfSpace', () => {
  it('finds the member whose failure is ERR_INSUFFICIENT_STORAGE, and only that', () => {
    const [a, b, c] = copies('a', 'b', 'c') as [StubCopy, StubCopy, StubCopy]
    b.failure = new Error('timeout')
    expect(outOfSpace([a, b, c])).toBeUndefined()
    c.failure = remoteError('ERR_INSUFFICIENT_STORAGE', 'full')
    expect(outOfSpace([a, b, c])).toMatchObject({ name: 'InsufficientStorageError', message: 'full' })
  })
})

describe('announcing the decision', () => {
  it('commit: the quorum hears it now, members still preparing once they are done, failed members never', async () => {
    const [a, b, c] = copies('a', 'b', 'c') as [StubCopy, StubCopy, StubCopy]
    a.succeed()
    await flush()
    a.decideError = new Error('stream closed') // a decision that does not arrive is the resolver's job: no unhandled rejection
    announceCommit([a, b, c], [a.prepare, b.prepare, c.prepare], [a])
    expect(a.decisions).toEqual([true])
    expect(b.decisions).toEqual([])
    b.succeed()
    c.fail()
    await flush()
    expect(b.decisions).toEqual([true])
    expect(c.decisions).toEqual([])
  })

  it('abort: waits for members preparing and for our own prepare, then tells only the prepared copies', async () => {
    const [a, b, c] = copies('a', 'b', 'c') as [StubCopy, StubCopy, StubCopy]
    const local = Promise.withResolvers<void>()
    a.succeed()
    const done = watch(announceAbort([a, b, c], [a.prepare, b.prepare, c.prepare], local.promise))
    b.succeed() // prepared during the wait: hears the abort now rather than from its resolver later
    c.fail()
    await flush()
    expect(done.state).toBe('pending')
    expect(a.decisions).toEqual([])
    local.reject(new Error('our disk failed too'))
    await flush()
    expect(done.state).toBe('resolved')
    expect([a.decisions, b.decisions, c.decisions]).toEqual([[false], [false], []])
  })

  it('abort: a member that never finishes preparing is waited for DECISION_TIMEOUT_MS only, and not told', async () => {
    sleeps.length = 0
    const [a, b] = copies('a', 'b') as [StubCopy, StubCopy]
    a.succeed()
    const done = watch(announceAbort([a, b], [a.prepare, b.prepare], undefined))
    await flush()
    expect(done.state).toBe('pending')
    expect(sleeps.map(s => s.ms)).toEqual([DECISION_TIMEOUT_MS])
    sleeps[0]?.end()
    await flush()
    expect(done.state).toBe('resolved')
    expect([a.decisions, b.decisions]).toEqual([[false], []])
  })
})
