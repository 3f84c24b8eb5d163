/** `dsm key create|list|delete`: S3 access keys of the cluster (stored replicated, sealed with the cluster secret). */
import { DsmClient } from '../client.ts'
import { formatTable } from '../format.ts'
import type { Command } from 'commander'

interface KeyFlags { node: string, token?: string, json?: boolean, bucket?: string[], read?: boolean, write?: boolean, name?: string }
interface KeyJson { accessKeyId: string, secretAccessKey?: string, buckets: string[], read: boolean, write: boolean, created: number, name?: string }

function rights (k: KeyJson): string {
  return [k.read ? 'read' : '', k.write ? 'write' : ''].filter(s => s !== '').join('+')
}

export function registerKeyCommands (program: Command, withClient: (cmd: Command) => Command): void {
  const key = program.command('key').description('S3 access keys: create, list, delete')
  withClient(key.command('create').description('make an S3 access key; its secret is printed once')
    .option('--bucket <bucket...>', 'buckets it may use (default: all)')
    .option('--read', 'it may read (default: read and write)')
    .option('--write', 'it may write (default: read and write)')
    .option('--name <name>', 'a note for `dsm key list`'))
    .action(async (flags: KeyFlags) => {
      const both = flags.read !== true && flags.write !== true
      const body = { buckets: flags.bucket ?? [], read: both || flags.read === true, write: both || flags.write === true, ...(flags.name != null ? { name: flags.name } : {}) }
      const made = await new DsmClient(flags.node, flags.token).json<KeyJson>('/api/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      process.stdout.write(flags.json === true
        ? `${JSON.stringify(made, null, 2)}\n`
        : `accessKeyId      ${made.accessKeyId}\nsecretAccessKey  ${made.secretAccessKey ?? '?'}\nbuckets          ${made.buckets.length === 0 ? 'all' : made.buckets.join(' ')}\nrights           ${rights(made)}\n(the secret is not shown again)\n`)
    })
  withClient(key.command('list').description('list the S3 access keys (without secrets)'))
    .action(async (flags: KeyFlags) => {
      const keys = await new DsmClient(flags.node, flags.token).json<KeyJson[]>('/api/keys')
      process.stdout.write(flags.json === true
        ? `${JSON.stringify(keys, null, 2)}\n`
        : `${keys.length === 0 ? 'no keys' : formatTable(['ACCESS KEY', 'BUCKETS', 'RIGHTS', 'CREATED', 'NAME'], keys.map(k => [k.accessKeyId, k.buckets.length === 0 ? 'all' : k.buckets.join(' '), rights(k), new Date(k.created).toISOString(), k.name ?? '']))}\n`)
    })
  withClient(key.command('delete').description('delete an S3 access key (it stops working within seconds)').argument('<accessKeyId>'))
    .action(async (id: string, flags: KeyFlags) => {
      await new DsmClient(flags.node, flags.token).fetch(`/api/keys/${encodeURIComponent(id)}`, { method: 'DELETE' })
      if (flags.json !== true) process.stdout.write(`deleted ${id}\n`)
    })
}
