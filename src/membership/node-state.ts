/**
 * What a node must remember about itself across restarts, kept apart from
 * its database (`<data>/node.json`, written atomically) so that a damaged
 * database can be rebuilt from the group without the node forgetting who it
 * is: its group (or that it is a spare) and its incarnation, the counter that
 * orders its heartbeats across restarts.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { InvalidConfigError } from '../errors.ts'
import { atomicWriteFile } from '../util/fs.ts'
import { formatZodError } from '../util/zod.ts'
import { groupName } from '../wire/messages.ts'

export const NODE_STATE_FILE_NAME = 'node.json'

const NodeStateSchema = z.object({
  group: groupName.nullable(),
  spare: z.boolean(),
  incarnation: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  /**
   * Whether this node has caught up with its group once (turned ACTIVE in it).
   * Until then it holds nothing the group lacks, and it may not call itself
   * caught up alone while its group has mates that hold files (they may only
   * be out of its reach). Absent in files of older versions: those nodes had
   * joined already.
   */
  synced: z.boolean().optional(),
  /**
   * Whether the group was chosen by the auto-join rule (not by --group or a
   * recruit). Only such a seat is given up when a race seated one node too
   * many (./surplus.ts). Absent in files of older versions: never moved.
   */
  auto: z.boolean().optional()
}).strict()
export type NodeStateData = z.infer<typeof NodeStateSchema>

/** Where an older node kept its group (the database's meta table): read once, then node.json takes over. */
export interface LegacyMeta { group?: string, spare: boolean }

export class NodeStateFile {
  readonly path: string
  private data: NodeStateData

  private constructor (path: string, data: NodeStateData) {
    this.path = path
    this.data = data
  }

  /**
   * Read the state and start a new incarnation (persisted before it is used).
   * A first start begins at the wall clock, so it outranks an older node of
   * the same identity that stamped incarnations with the clock.
   */
  static async open (dataDir: string, legacy: () => LegacyMeta = () => ({ spare: false })): Promise<NodeStateFile> {
    const path = join(dataDir, NODE_STATE_FILE_NAME)
    let data: NodeStateData
    let text: string | undefined
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new InvalidConfigError(`${path}: ${(err as Error).message}`)
    }
    if (text == null) {
      const old = legacy()
      data = { group: old.group ?? null, spare: old.spare, incarnation: Date.now(), synced: old.group != null }
    } else {
      let raw: unknown
      try { raw = JSON.parse(text) } catch (err) { throw new InvalidConfigError(`${path}: not valid JSON (${(err as Error).message}); restore it, or remove it to have the node choose its group again`) }
      const parsed = NodeStateSchema.safeParse(raw)
      if (!parsed.success) throw new InvalidConfigError(`${path}: ${formatZodError(parsed.error)}`)
      data = { ...parsed.data, incarnation: parsed.data.incarnation + 1 }
    }
    const state = new NodeStateFile(path, data)
    await state.save()
    return state
  }

  get group (): string | null { return this.data.group }
  get spare (): boolean { return this.data.spare }
  get incarnation (): number { return this.data.incarnation }
  get synced (): boolean { return this.data.synced ?? true }
  get auto (): boolean { return this.data.auto ?? false }

  /** A new group (auto-joined, configured, recruited into) is one this node has not caught up with yet. */
  async setGroup (group: string, how: { auto?: boolean } = {}): Promise<void> {
    this.data = { ...this.data, group, spare: false, synced: group === this.data.group && this.synced, auto: how.auto === true }
    await this.save()
  }

  /** Caught up with its group once: from now on a restart may find itself alone and still be ACTIVE. */
  async setSynced (): Promise<void> {
    if (this.synced) return
    this.data = { ...this.data, synced: true }
    await this.save()
  }

  async setSpare (): Promise<void> {
    this.data = { ...this.data, group: null, spare: true }
    await this.save()
  }

  private async save (): Promise<void> {
    await atomicWriteFile(this.path, `${JSON.stringify(this.data, null, 2)}\n`)
  }
}
