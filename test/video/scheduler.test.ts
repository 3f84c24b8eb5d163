/**
 * The video job scheduler (src/video/scheduler.ts), by properties over
 * random tables, members and local state: a member never claims more than
 * its free slots, never a job of a package that is not being made, never a
 * job a live owner is running (unless its record went stale), and —
 * members seeing one table, within the grace time — no two members claim
 * the same job. It takes over a dead or silent owner's job and its own
 * after a restart, and stops a job that was taken over or whose package
 * went away.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { schedule } from '../../src/video/scheduler.ts'
import type { ScheduleInput } from '../../src/video/scheduler.ts'
import type { JobRecord, PackageRecord } from '../../src/wire/media.ts'

const PEERS = ['12D3KooWA', '12D3KooWB', '12D3KooWC', '12D3KooWD']
const TASKS = ['360p', '240p', 'audio', 'preview']

function pkg (source: string, state: PackageRecord['state']): ScheduleInput['packages'][number] {
  return { key: `pkg/${source}`, ts: 1, origin: PEERS[0] ?? '', record: { source, group: 'g1', state, created: 1, updated: 1, tasks: TASKS } }
}

function job (source: string, task: string, state: JobRecord['state'], owner?: string, ts = 1): ScheduleInput['jobs'][number] {
  return { key: `job/${source}/${task}`, source, ts, origin: PEERS[0] ?? '', record: { task, state, attempt: 1, updated: 1, ...(owner != null ? { owner } : {}) } }
}

const tableArb = fc.record({
  members: fc.array(fc.constantFrom('ACTIVE', 'ACTIVE', 'OFFLINE', 'SYNCING'), { minLength: 4, maxLength: 4 }),
  packages: fc.array(fc.record({ state: fc.constantFrom('queued', 'transcoding', 'transcoding', 'ready', 'cancelled') as fc.Arbitrary<PackageRecord['state']> }), { minLength: 1, maxLength: 3 }),
  jobs: fc.array(fc.record({ state: fc.constantFrom('queued', 'running', 'done', 'failed') as fc.Arbitrary<JobRecord['state']>, owner: fc.integer({ min: 0, max: 3 }) }), { minLength: 12, maxLength: 12 }),
  ages: fc.array(fc.integer({ min: 0, max: 60_000 }), { minLength: 16, maxLength: 16 }),
  slots: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 4, maxLength: 4 })
})

describe('video job scheduling', () => {
  it('keeps slots, packages, live owners and rank (property)', () => {
    fc.assert(fc.property(tableArb, (t) => {
      const members = PEERS.map((peerId, i) => ({ peerId, state: t.members[i] ?? 'ACTIVE' }))
      const packages = t.packages.map((p, i) => pkg(`src${i}`, p.state))
      const jobs = packages.flatMap((p, i) => TASKS.map((task, k) => {
        const j = t.jobs[(i * 4 + k) % t.jobs.length] ?? { state: 'queued', owner: 0 }
        return job(p.record.source, task, j.state, j.state === 'queued' ? undefined : PEERS[j.owner])
      }))
      const keyAge = new Map([...packages, ...jobs].map((r, i) => [r.key, t.ages[i % t.ages.length] ?? 0]))
      const input = (self: number, graceMs: number): ScheduleInput => ({
        selfId: PEERS[self] ?? '',
        members,
        packages,
        jobs,
        running: new Map(),
        busy: new Set(),
        sourceDeleted: () => false,
        freeSlots: t.slots[self] ?? 0,
        ageOf: (key) => keyAge.get(key) ?? 0,
        staleAfterMs: 30_000,
        claimGraceMs: graceMs
      })
      const claimedBy = new Map<string, string[]>()
      for (let self = 0; self < PEERS.length; self++) {
        if (members[self]?.state !== 'ACTIVE') continue
        const claims = schedule(input(self, Infinity)).filter(a => a.kind === 'claim')
        expect(claims.length).toBeLessThanOrEqual(t.slots[self] ?? 0)
        for (const a of claims) {
          if (a.kind !== 'claim') continue
          const j = jobs.find(x => x.source === a.source && x.record.task === a.task)
          const p = packages.find(x => x.record.source === a.source)
          expect(p?.record.state).toBe('transcoding')
          const owner = j?.record.owner
          const ownerAlive = members.some(m => m.peerId === owner && m.state !== 'OFFLINE')
          if (j?.record.state === 'running') expect(owner === PEERS[self] || !ownerAlive || (keyAge.get(j.key) ?? 0) > 30_000).toBe(true)
          else expect(j?.record.state).toBe('queued')
          const key = `${a.source}/${a.task}`
          claimedBy.set(key, [...(claimedBy.get(key) ?? []), PEERS[self] ?? ''])
        }
      }
      // Within the grace time only the job's first choice claims it — except a restarted owner taking its own back.
      for (const [key, who] of claimedBy) {
        const j = jobs.find(x => `${x.source}/${x.record.task}` === key)
        if (j?.record.state === 'queued') expect(who.length).toBe(1)
      }
    }), { numRuns: 300 })
  })

  it('takes over the job of an owner that is OFFLINE or silent, and its own after a restart', () => {
    const members = PEERS.map(peerId => ({ peerId, state: 'ACTIVE' }))
    const base = (jobs: ScheduleInput['jobs'], ages: number, self = 1): ScheduleInput => ({
      selfId: PEERS[self] ?? '',
      members,
      packages: [pkg('s', 'transcoding')],
      jobs,
      running: new Map(),
      busy: new Set(),
      sourceDeleted: () => false,
      freeSlots: 1,
      ageOf: () => ages,
      staleAfterMs: 30_000,
      claimGraceMs: 0
    })
    const running = [job('s', '360p', 'running', PEERS[0])]
    expect(schedule(base(running, 1_000)).filter(a => a.kind === 'claim')).toEqual([])
    expect(schedule(base(running, 31_000)).filter(a => a.kind === 'claim').length).toBe(1)
    expect(schedule({ ...base(running, 1_000), members: members.map((m, i) => i === 0 ? { ...m, state: 'OFFLINE' } : m) }).filter(a => a.kind === 'claim').length).toBe(1)
    // Ours, not running here: we restarted.
    expect(schedule({ ...base(running, 0, 0), claimGraceMs: Infinity }).filter(a => a.kind === 'claim').length).toBe(1)
  })

  it('stops a job here that another member took over, or whose package is gone', () => {
    const members = PEERS.map(peerId => ({ peerId, state: 'ACTIVE' }))
    const input = (p: ScheduleInput['packages'], jobs: ScheduleInput['jobs']): ScheduleInput => ({
      selfId: PEERS[0] ?? '',
      members,
      packages: p,
      jobs,
      running: new Map([['job/s/360p', { ts: 5, origin: PEERS[0] ?? '' }]]),
      busy: new Set(),
      sourceDeleted: () => false,
      freeSlots: 0,
      ageOf: () => 0,
      staleAfterMs: 30_000,
      claimGraceMs: 10_000
    })
    expect(schedule(input([pkg('s', 'transcoding')], [job('s', '360p', 'running', PEERS[0], 5)]))).toEqual([])
    expect(schedule(input([pkg('s', 'transcoding')], [job('s', '360p', 'running', PEERS[2], 9)]))).toEqual([{ kind: 'abort', key: 'job/s/360p', why: 'taken over by 12D3KooWC'.replace('12D3KooWC', (PEERS[2] ?? '').slice(-8)) }])
    expect(schedule(input([pkg('s', 'cancelled')], [job('s', '360p', 'running', PEERS[0], 5)]))[0]).toMatchObject({ kind: 'abort', why: 'its package is cancelled' })
    expect(schedule(input([], []))[0]).toMatchObject({ kind: 'abort', why: 'its job was removed' })
  })

  it('removes the package of a deleted source, and claims none of its jobs', () => {
    const members = PEERS.map(peerId => ({ peerId, state: 'ACTIVE' }))
    const actions = schedule({ selfId: PEERS[0] ?? '', members, packages: [pkg('s', 'transcoding')], jobs: [job('s', '360p', 'queued')], running: new Map(), busy: new Set(), sourceDeleted: (id) => id === 's', freeSlots: 2, ageOf: () => 60_000, staleAfterMs: 30_000, claimGraceMs: 10_000 })
    expect(actions).toEqual([{ kind: 'remove', source: 's' }])
  })

  it('claims the cheapest video rendition first, then up the ladder, then audio and the preview', () => {
    const one = [{ peerId: PEERS[0] ?? '', state: 'ACTIVE' }]
    const spec = (h: number) => ({ kind: 'video' as const, name: `${h}p`, width: Math.round(h * 16 / 9), height: h, videoKbps: 1000, audioKbps: 128, fps: 25 })
    const jobs = [
      { ...job('s', 'preview', 'queued') },
      { ...job('s', 'audio', 'queued'), record: { ...job('s', 'audio', 'queued').record, spec: { kind: 'audio' as const, name: 'audio' as const, audioKbps: 96 } } },
      ...[1080, 720, 240].map(h => ({ ...job('s', `${h}p`, 'queued'), record: { ...job('s', `${h}p`, 'queued').record, spec: spec(h) } }))
    ]
    const claims = (slots: number): string[] => schedule({
      selfId: PEERS[0] ?? '', members: one, packages: [pkg('s', 'transcoding')], jobs, running: new Map(), busy: new Set(), sourceDeleted: () => false, freeSlots: slots, ageOf: () => 0, staleAfterMs: 30_000, claimGraceMs: 10_000
    }).flatMap(a => a.kind === 'claim' ? [a.task] : [])
    expect(claims(1)).toEqual(['240p'])
    expect(claims(5)).toEqual(['240p', '720p', '1080p', 'audio', 'preview'])
  })

  it('drops the job rows of a cancelled or removed package that no member runs', () => {
    const members = PEERS.map(peerId => ({ peerId, state: 'ACTIVE' }))
    const input = (packages: ScheduleInput['packages'], running: ScheduleInput['running']): ScheduleInput => ({
      selfId: PEERS[0] ?? '', members, packages, jobs: [job('s', '360p', 'running', PEERS[1])], running, busy: new Set(), sourceDeleted: () => false, freeSlots: 1, ageOf: () => 60_000, staleAfterMs: 30_000, claimGraceMs: 10_000
    })
    expect(schedule(input([pkg('s', 'cancelled')], new Map()))).toEqual([{ kind: 'forget', source: 's', task: '360p' }])
    expect(schedule(input([], new Map()))).toEqual([{ kind: 'forget', source: 's', task: '360p' }])
    expect(schedule(input([pkg('s', 'ready')], new Map()))).toEqual([])
    // Ours and still running here: stopped first, dropped on a later pass.
    expect(schedule(input([pkg('s', 'cancelled')], new Map([['job/s/360p', { ts: 1, origin: PEERS[0] ?? '' }]])))).toEqual([{ kind: 'abort', key: 'job/s/360p', why: 'its package is cancelled' }])
  })

  it('finishes a package once every rendition is done, and fails it on a failed rendition', () => {
    const members = PEERS.map(peerId => ({ peerId, state: 'ACTIVE' }))
    const input = (jobs: ScheduleInput['jobs']): ScheduleInput => ({
      selfId: PEERS[0] ?? '',
      members,
      packages: [pkg('s', 'transcoding')],
      jobs,
      running: new Map(),
      busy: new Set(),
      sourceDeleted: () => false,
      freeSlots: 0,
      ageOf: () => 60_000,
      staleAfterMs: 30_000,
      claimGraceMs: 10_000
    })
    const done = TASKS.map(t => job('s', t, 'done', PEERS[1]))
    expect(schedule(input(done))).toEqual([{ kind: 'finalize', source: 's' }])
    expect(schedule(input(done.map(j => j.record.task === 'preview' ? job('s', 'preview', 'failed', PEERS[1]) : j)))).toEqual([{ kind: 'finalize', source: 's' }])
    expect(schedule(input(done.map(j => j.record.task === '240p' ? { ...job('s', '240p', 'failed', PEERS[1]), record: { ...job('s', '240p', 'failed').record, error: 'boom' } } : j)))).toEqual([{ kind: 'fail', source: 's', error: '240p: boom' }])
    expect(schedule(input(done.slice(1)))).toEqual([])
  })
})
