import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { dsm } from '../sim/proc.ts'

describe('dsm CLI', () => {
  it('prints help and exits 0', async () => {
    const r = await dsm(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/node \[options\]/)
    expect(r.stdout).toMatch(/groups/)
  })

  it.each([
    [['node', '--group-size', 'abc'], /--group-size.*positive integer/],
    [['node', '--bogus'], /unknown option '--bogus'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['node', '--data', '/tmp/dsm-cli-never', '--listen', 'nonsense'], /listen\[0\]: not a valid multiaddr/],
    [['node', '--data', '/tmp/dsm-cli-never', '--http', 'nohost'], /HOST:PORT/]
  ])('bad usage %j → message and exit code 2', async (args, message) => {
    const r = await dsm(args)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
  })

  it('says clearly when the node is unreachable (exit 1)', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer()
    await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
    const port = (probe.address() as { port: number }).port
    await new Promise(resolve => probe.close(resolve))
    const r = await dsm(['groups', '--node', `http://127.0.0.1:${port}`])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`cannot reach a dsm node at http://127.0.0.1:${port} (ECONNREFUSED)`)
    const viaEnv = await dsm(['peers'], { DSM_NODE: `http://127.0.0.1:${port}` })
    expect(viaEnv.code).toBe(1)
    expect(viaEnv.stderr).toContain(`127.0.0.1:${port}`)
  })
})
