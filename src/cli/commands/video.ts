/** `dsm hls <id>` and `dsm jobs [cancel <id>]`: video packages and the jobs that make them, through any node. */
import { DsmClient } from '../client.ts'
import { formatTable, printResult, shortPeerId } from '../format.ts'
import type { ClientFlags } from '../format.ts'
import type { PackageStatus } from '../../video/package-ops.ts'
import type { Command } from 'commander'

function eta (s: number | undefined): string {
  if (s == null) return ''
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}

/** A package's status as `dsm stat`, `dsm hls` and `dsm jobs` show it. */
export function packageText (p: PackageStatus): string {
  const lines = [
    `hls      ${p.state}${p.state === 'transcoding' || p.state === 'queued' ? ` ${p.percent.toFixed(1)} %${p.etaS != null ? `, ${eta(p.etaS)} left` : ''}` : ''}${p.error != null ? ` — ${p.error}` : ''}`
  ]
  if (p.master != null) lines.push(`master   ${p.master}`)
  if (p.poster != null) lines.push(`poster   ${p.poster}`, `thumbs   ${p.storyboard ?? ''}`)
  if (p.tasks.length > 0) {
    lines.push('', formatTable(['TASK', 'STATE', 'PROGRESS', 'SPEED', 'ETA', 'NODE', 'TRY', 'ERROR'], p.tasks.map(t => [
      t.task, t.state, `${t.percent.toFixed(1)} %`, t.speed != null ? `${t.speed.toFixed(1)}×` : '', eta(t.etaS), t.owner != null ? shortPeerId(t.owner) : '', String(t.attempt), t.error ?? ''
    ])))
  }
  return lines.join('\n')
}

export function registerVideoCommands (program: Command, withClient: (cmd: Command) => Command): void {
  withClient(program.command('hls').argument('<id>', 'file ID of a video').description('make an HLS ladder, a poster and a storyboard of a stored video (upload --hls does it at upload)'))
    .action(async (id: string, flags: ClientFlags) => {
      const p = await new DsmClient(flags.node, flags.token).json<PackageStatus>(`/api/files/${encodeURIComponent(id)}/hls`, { method: 'POST' })
      printResult(flags, p, () => `${packageText(p)}\n(follow it with: dsm jobs)`)
    })

  const jobs = withClient(program.command('jobs').description('video packages being made, and failed ones, with each job\'s progress'))
    .option('--all', 'include ready and cancelled packages')
    .action(async (flags: ClientFlags & { all?: boolean }) => {
      const r = await new DsmClient(flags.node, flags.token).json<{ packages: PackageStatus[], unavailable: string[] }>('/api/jobs')
      // Under way, and failures (they need someone's attention); --all adds the ready and the cancelled.
      const shown = flags.all === true ? r.packages : r.packages.filter(p => p.state === 'queued' || p.state === 'transcoding' || p.state === 'failed')
      printResult(flags, { ...r, packages: shown }, () => [
        shown.length === 0 ? `no video jobs${flags.all === true ? '' : ' under way (--all shows ready packages)'}` : shown.map(p => `${p.source}\n${packageText(p)}`).join('\n\n'),
        ...(r.unavailable.length > 0 ? [`(groups that could not answer: ${r.unavailable.join(', ')})`] : [])
      ].join('\n'))
    })
  withClient(jobs.command('cancel').argument('<id>', 'file ID of the source video').description('stop making a video\'s package and delete what was made of it'))
    .action(async (id: string, _flags: ClientFlags, cmd: Command) => {
      // `jobs` takes the client options too: given after `cancel ID`, commander hands them to it.
      const flags = cmd.optsWithGlobals<ClientFlags>()
      const p = await new DsmClient(flags.node, flags.token).json<PackageStatus>(`/api/files/${encodeURIComponent(id)}/hls`, { method: 'DELETE' })
      printResult(flags, p, () => packageText(p))
    })
}
