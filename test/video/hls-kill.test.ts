/**
 * Video jobs across OS processes (`bin/dsm node`, TCP): a job survives
 * `kill -9` of the node running it — another member of the group takes it
 * over and the ladder completes and plays — and the CLI drives it all:
 * `dsm upload --hls`, `dsm jobs`, `dsm stat`, `dsm jobs cancel`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findMediaTools, run } from '../../src/media/tools.ts'
import { dsm, eventually, startProcNode } from '../sim/proc.ts'
import { SAMPLE_30S, ffprobe, processesUnder } from '../helpers/media.ts'
import type { ProcNode } from '../sim/proc.ts'
import type { PackageStatus } from '../../src/video/package-ops.ts'

const ENV = { DSM_MAX_RENDITIONS: '1' }

async function jobs (node: ProcNode): Promise<PackageStatus[]> {
  const res = await fetch(`${node.url}/api/jobs`)
  return ((await res.json()) as { packages: PackageStatus[] }).packages
}

describe('video jobs across OS processes', () => {
  let root: string
  let long: string
  const nodes: Array<ProcNode | undefined> = []
  const live = (): ProcNode[] => nodes.filter((n): n is ProcNode => n != null)

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsm-hls-proc-'))
    // Two minutes of video (the sample four times, no re-encoding): a rendition takes long enough to be caught running.
    long = join(root, 'long.mp4')
    const tools = await findMediaTools()
    await run(tools.ffmpeg, ['-v', 'error', '-stream_loop', '3', '-i', SAMPLE_30S, '-c', 'copy', long])
    nodes.push(await startProcNode({ dataDir: join(root, 'n1'), env: ENV }))
    for (const name of ['n2', 'n3']) nodes.push(await startProcNode({ dataDir: join(root, name), bootstrap: [nodes[0]?.addr ?? ''], env: ENV }))
    await eventually(async () => (await (await fetch(`${nodes[0]?.url ?? ''}/api/groups`)).json()) as Array<{ members: Array<{ state: string }> }>,
      g => g.length === 1 && g[0]?.members.filter(m => m.state === 'ACTIVE').length === 3, 30_000, 'one group of 3 ACTIVE')
  }, 120_000)

  afterAll(async () => {
    await Promise.all(live().map(async n => n.stop('SIGKILL')))
    // A killed node's ffmpeg may still be writing under root (it ends at its next progress write):
    // removing root under it failed once with ENOTEMPTY.
    await eventually(async () => processesUnder(root), n => n === 0, 30_000, 'the killed nodes\' ffmpeg runs ended')
    await rm(root, { recursive: true, force: true })
  })

  it('a job survives kill -9 of its node: another member takes it over and the ladder plays', async () => {
    const up = await dsm(['upload', long, '--hls', '--node', nodes[0]?.url ?? ''])
    expect(up.code, up.stderr).toBe(0)
    const id = up.stdout.trim()
    // Caught running: the node running the 360p rendition is killed.
    const running = await eventually(async () => (await jobs(nodes[1] as ProcNode)).find(p => p.source === id)?.tasks.find(t => t.task === '360p'),
      t => t?.state === 'running' && t.owner != null && t.percent < 80, 60_000, 'the 360p job running')
    const victim = nodes.findIndex(n => n?.peerId === running?.owner)
    expect(victim).toBeGreaterThanOrEqual(0)
    await nodes[victim]?.stop('SIGKILL')
    nodes[victim] = undefined
    const survivor = live()[0] as ProcNode
    const ready = await eventually(async () => (await jobs(survivor)).find(p => p.source === id), p => p?.state === 'ready' || p?.state === 'failed', 180_000, 'the package ready after the takeover')
    expect(ready?.state).toBe('ready')
    const task = ready?.tasks.find(t => t.task === '360p')
    expect(task?.attempt).toBe(2)
    expect(task?.owner).not.toBe(running?.owner)
    const probed = await ffprobe(`${survivor.url}/files/${id}/hls/360p/index.m3u8`)
    expect(probed.streams.find(s => s.codec_type === 'video')?.height).toBe(360)
    expect(Number(probed.format.duration)).toBeCloseTo(120, -1)
    // What an operator sees.
    const stat = await dsm(['stat', id, '--node', survivor.url])
    expect(stat.stdout).toMatch(/^hls\s+ready$/m)
    expect(stat.stdout).toMatch(new RegExp(`master\\s+/files/${id}/hls/master\\.m3u8`))
    const listed = await dsm(['jobs', '--all', '--node', survivor.url])
    expect(listed.stdout).toMatch(/360p\s+done\s+100\.0 %/)
  }, 300_000)

  it('dsm jobs cancel stops a package being made and removes what was made', async () => {
    const node = live()[0] as ProcNode
    const up = await dsm(['upload', long, '--name', 'again.mp4', '--hls', '--node', node.url])
    const id = up.stdout.trim()
    await eventually(async () => (await jobs(node)).find(p => p.source === id), p => p?.state === 'transcoding', 60_000, 'transcoding')
    const cancelled = await dsm(['jobs', 'cancel', id, '--json', '--node', node.url])
    expect(cancelled.code, cancelled.stderr).toBe(0)
    expect((JSON.parse(cancelled.stdout) as PackageStatus).state).toBe('cancelled')
    const after = await eventually(async () => (await jobs(node)).find(p => p.source === id), p => p?.tasks.length === 0, 30_000, 'its jobs removed')
    expect(after?.state).toBe('cancelled')
    expect((await fetch(`${node.url}/files/${id}/hls/master.m3u8`)).status).toBe(404)
    const none = await dsm(['jobs', '--node', node.url])
    expect(none.stdout).not.toContain(id)
  }, 120_000)
})
