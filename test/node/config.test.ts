import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DEFAULTS, resolveConfig } from '../../src/node/config.ts'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'dsm-config-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

describe('config layers', () => {
  it('defaults < dsm.json < DSM_* env < flags', async () => {
    await writeFile(join(dir, 'dsm.json'), JSON.stringify({ groupSize: 5, http: '127.0.0.1:9001', group: 'from-file', logLevel: 'warn' }))
    const env = { DSM_DATA: dir, DSM_HTTP: '127.0.0.1:9002', DSM_GROUP: 'from-env', DSM_BOOTSTRAP: '/ip4/10.0.0.1/tcp/1, /ip4/10.0.0.2/tcp/2' }
    const config = await resolveConfig({ env, flags: { group: 'from-flag' } })
    expect(config).toMatchObject({
      dataDir: dir,
      groupSize: 5, // file
      logLevel: 'warn', // file
      http: { host: '127.0.0.1', port: 9002 }, // env beats file
      group: 'from-flag', // flag beats env and file
      bootstrap: ['/ip4/10.0.0.1/tcp/1', '/ip4/10.0.0.2/tcp/2'],
      listen: DEFAULTS.listen
    })
  })

  it('parses IPv6 HTTP addresses', async () => {
    const config = await resolveConfig({ env: {}, flags: { dataDir: dir, http: '[::1]:8080' } })
    expect(config.http).toEqual({ host: '::1', port: 8080 })
  })

  it.each([
    ['a bad multiaddr', { listen: ['not-a-multiaddr'] }, /listen.*multiaddr/],
    ['a bad HTTP address', { http: 'localhost' }, /HOST:PORT/],
    ['a port out of range', { http: '127.0.0.1:70000' }, /HOST:PORT/],
    ['a group name with a slash', { group: '../etc' }, /group/],
    ['a spare with a group', { spare: true, group: 'g1' }, /spare/]
  ])('refuses %s from flags with InvalidConfigError', async (_what, flags, message) => {
    const err = await resolveConfig({ env: {}, flags: { dataDir: dir, ...flags } }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).name).toBe('InvalidConfigError')
    expect((err as Error).message).toMatch(message)
  })

  it('names the source of a bad value: env var, dsm.json', async () => {
    const fromEnv = await resolveConfig({ env: { DSM_DATA: dir, DSM_GROUP_SIZE: 'three' } }).catch((e: Error) => e)
    expect(fromEnv).toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/^environment: .*groupSize/) })
    await writeFile(join(dir, 'dsm.json'), '{"groupSize": 3, "grupSize": 4}')
    const typo = await resolveConfig({ env: { DSM_DATA: dir } }).catch((e: Error) => e)
    expect(typo).toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/dsm\.json: .*grupSize/) })
    await writeFile(join(dir, 'dsm.json'), '{"groupSize": ')
    const broken = await resolveConfig({ env: { DSM_DATA: dir } }).catch((e: Error) => e)
    expect(broken).toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/not valid JSON/) })
  })

  it('requires the offline timeout to exceed the heartbeat interval', async () => {
    const err = await resolveConfig({ env: { DSM_HEARTBEAT_INTERVAL_MS: '1000', DSM_OFFLINE_AFTER_MS: '500' }, flags: { dataDir: dir } }).catch((e: Error) => e)
    expect(err).toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/offlineAfterMs/) })
  })

  it('settings that exclude each other: the stronger layer wins, the same layer is an error', async () => {
    // The quick start exports DSM_TOKEN; `dsm node --open` in that shell must still start, open.
    const open = await resolveConfig({ env: { DSM_TOKEN: 'exported-token-0123456789' }, flags: { dataDir: dir, open: true } })
    expect(open).toMatchObject({ open: true, token: null })
    const token = await resolveConfig({ env: { DSM_OPEN: '1' }, flags: { dataDir: dir, token: 'flag-token-0123456789' } })
    expect(token).toMatchObject({ open: false, token: 'flag-token-0123456789' })
    const file = await resolveConfig({ env: { DSM_SECRET: 'env-secret-0123456789abcdef0123456789' }, flags: { dataDir: dir, secretFile: 'my.secret' } })
    expect(file).toMatchObject({ secret: null, secretFile: join(dir, 'my.secret') })
    const both = await resolveConfig({ env: { DSM_OPEN: '1', DSM_TOKEN: 'exported-token-0123456789' }, flags: { dataDir: dir } }).catch((e: Error) => e)
    expect(both).toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/--open and have a token/) })
  })

  it('--rebuild is a flag only, never a setting kept in dsm.json or the environment', async () => {
    await writeFile(join(dir, 'dsm.json'), JSON.stringify({ rebuild: true }))
    const err = await resolveConfig({ env: {}, flags: { dataDir: dir } }).catch((e: Error) => e)
    expect(err).toMatchObject({ name: 'InvalidConfigError', message: expect.stringMatching(/rebuild is a command-line flag only/) })
    await writeFile(join(dir, 'dsm.json'), '{}')
    expect(await resolveConfig({ env: {}, flags: { dataDir: dir, rebuild: true } })).toMatchObject({ rebuild: true })
  })
})
