/** One node per data directory: a second `dsm node` on a directory in use refuses to start and says why; a lock left by a killed node is taken over. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startProcNode } from '../sim/proc.ts'

describe('the data directory lock', () => {
  it('a second node on a data directory in use exits with the reason; after a kill -9 the directory starts again', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'dsm-lock-'))
    const first = await startProcNode({ dataDir })
    try {
      const second = startProcNode({ dataDir })
      await expect(second).rejects.toThrow(/another dsm node \(pid \d+\) is running on/)
      await first.stop('SIGKILL')
      // Its LOCK names a process that is gone: the next node takes it over.
      const again = await startProcNode({ dataDir })
      await again.stop()
    } finally {
      await first.stop('SIGKILL')
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
