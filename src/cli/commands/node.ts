/**
 * `dsm node`: run a node in the foreground until SIGINT/SIGTERM. The node
 * (libp2p, the store, Fastify) is imported when the command runs, so that the
 * client commands and `--help` start without loading it.
 */
import { InvalidArgumentError } from 'commander'
import { secretRefusedText } from '../format.ts'
import type { ConfigLayer } from '../../node/config.ts'
import type { Command } from 'commander'

export function parsePositiveInt (value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a positive integer')
  return Number(value)
}

export function parseCount (value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number (0 or more)')
  return Number(value)
}

interface NodeFlags {
  data?: string
  listen?: string[]
  http?: string
  s3?: string
  bootstrap?: string[]
  group?: string
  groupSize?: number
  spare?: boolean
  logLevel?: string
  reserve?: string
  writeQuorum?: string
  placement?: string
  repairAfter?: string
  cacheSize?: string
  token?: string
  open?: boolean
  signedUrls?: boolean
  networkKey?: string
  allowPeer?: string[]
  secretFile?: string
  newCluster?: boolean
  previousSecret?: string[]
  minCopies?: number
  rebuild?: boolean
  transcodeJobs?: number
  autoHls?: boolean
  maxRenditions?: number
}

export function flagsToLayer (flags: NodeFlags): ConfigLayer {
  const layer: Record<string, unknown> = {
    dataDir: flags.data,
    listen: flags.listen,
    http: flags.http,
    s3: flags.s3,
    bootstrap: flags.bootstrap,
    group: flags.group,
    groupSize: flags.groupSize,
    spare: flags.spare,
    logLevel: flags.logLevel,
    reserve: flags.reserve,
    writeQuorum: flags.writeQuorum,
    minCopies: flags.minCopies,
    placement: flags.placement,
    repairAfterMs: flags.repairAfter,
    cacheSize: flags.cacheSize,
    token: flags.token,
    open: flags.open,
    signedUrls: flags.signedUrls,
    networkKey: flags.networkKey,
    allowPeers: flags.allowPeer,
    secretFile: flags.secretFile,
    newCluster: flags.newCluster,
    rebuild: flags.rebuild,
    transcodeJobs: flags.transcodeJobs,
    autoHls: flags.autoHls,
    maxRenditions: flags.maxRenditions,
    previousSecrets: flags.previousSecret
  }
  return Object.fromEntries(Object.entries(layer).filter(([, v]) => v !== undefined)) as ConfigLayer
}

export function registerNodeCommand (program: Command): void {
  program.command('node')
    .description('run a dsm node (storage, DHT, gossip and HTTP API) in the foreground')
    .option('--data <dir>', 'data directory (env DSM_DATA; default ~/.local/share/dsm)')
    .option('--listen <multiaddr...>', 'libp2p listen addresses (env DSM_LISTEN; default /ip4/0.0.0.0/tcp/4100 and /ip4/0.0.0.0/tcp/4101/ws)')
    .option('--http <host:port>', 'HTTP API address (env DSM_HTTP; default 127.0.0.1:8080)')
    .option('--s3 <host:port|off>', 'S3 API address, or off (env DSM_S3; default 127.0.0.1:9000; keys: dsm key create)')
    .option('--bootstrap <multiaddr...>', 'peers to join through, with /p2p/<peer id> (env DSM_BOOTSTRAP)')
    .option('--group <name>', 'join this replica group instead of auto-joining (env DSM_GROUP)')
    .option('--group-size <n>', 'target members per group for auto-joining (env DSM_GROUP_SIZE; default 3)', parsePositiveInt)
    .option('--spare', 'join no group; wait to be recruited by a group that lost a member (env DSM_SPARE)')
    .option('--reserve <size>', 'free space to keep on the data disk: "10%" or bytes like "50GiB" (env DSM_RESERVE; default 10%)')
    .option('--write-quorum <n>', 'copies an upload needs before it is acknowledged: "all" ACTIVE members or a number (env DSM_WRITE_QUORUM; default all)')
    .option('--min-copies <n>', 'never acknowledge an upload with fewer copies, e.g. while the other members look OFFLINE (env DSM_MIN_COPIES; default 2, or a smaller numeric --write-quorum)', parsePositiveInt)
    .option('--placement <policy>', 'group for uploads without ?group=: most-free | round-robin (env DSM_PLACEMENT; default most-free)')
    .option('--repair-after <duration>', 'replace a member OFFLINE this long: "60s", "5m" (env DSM_REPAIR_AFTER; default 60s)')
    .option('--cache-size <size>', 'chunk cache for files streamed but not held: "256MiB", 0 to disable (env DSM_CACHE_SIZE; default 256MiB)')
    .option('--token <token>', 'cluster token HTTP writes need (prefer env DSM_TOKEN; default: made once and kept in <data>/token)')
    .option('--open', 'take writes without a token (trusted networks only; env DSM_OPEN)')
    .option('--signed-urls', 'serve downloads only through signed, expiring URLs or with the token (env DSM_SIGNED_URLS)')
    .option('--secret-file <file>', 'file holding the cluster secret every node shares (env DSM_SECRET_FILE, or the secret itself in DSM_SECRET; default: made once and kept in <data>/secret)')
    .option('--new-cluster', 'make a cluster secret although --bootstrap is given (a node joining a cluster needs that cluster\'s secret instead; env DSM_NEW_CLUSTER)')
    .option('--previous-secret <secret...>', 'older cluster secrets still accepted while the cluster rotates to a new one (prefer env DSM_PREVIOUS_SECRETS)')
    .option('--network-key <file>', 'private cluster: pnet swarm key file shared by every node (make one with dsm swarm-key; env DSM_NETWORK_KEY)')
    .option('--allow-peer <peer id...>', 'private cluster: only these peers may connect (env DSM_ALLOW_PEERS)')
    .option('--transcode-jobs <n>', 'video jobs (HLS renditions, posters) this node runs at once, 0 for none (env DSM_TRANSCODE_JOBS; default 1)', parseCount)
    .option('--auto-hls', 'give every video uploaded through this node an HLS ladder, as ?hls=1 does (env DSM_AUTO_HLS)')
    .option('--max-renditions <n>', 'video renditions per ladder at most, the highest kept (env DSM_MAX_RENDITIONS; default: every standard height up to the source\'s)', parsePositiveInt)
    .option('--rebuild', 'rebuild this member\'s index from its group (after a damaged database): the database is moved aside, chunk files that verify are reused')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env DSM_LOG_LEVEL; default info)')
    .action(async (flags: NodeFlags) => {
      const [{ resolveConfig }, { DsmNode }] = await Promise.all([import('../../node/config.ts'), import('../../node/dsm-node.ts')])
      const config = await resolveConfig({ flags: flagsToLayer(flags) })
      const node = new DsmNode({ config })
      // Every promise has an owner that handles its failure; should one slip through, it is a bug to report,
      // not a reason to take the node (and every transfer it serves) down.
      process.on('unhandledRejection', (reason) => {
        process.stderr.write(`dsm node: BUG, a promise failed with nobody to handle it (the node keeps running; please report): ${reason instanceof Error ? reason.stack ?? reason.message : String(reason)}\n`)
      })
      let refusedSaid = 0
      node.addEventListener('secret-refused', (evt) => {
        // Said again only when more peers refused (a log line per peer is in the JSON log already).
        const text = secretRefusedText(evt.detail)
        if (text == null || evt.detail.refusedPeers <= refusedSaid) return
        refusedSaid = evt.detail.refusedPeers
        process.stderr.write(`dsm node: ${text}\n`)
      })
      await node.start()
      const id = node.identity()
      const out = process.stdout
      out.write(`dsm node ${id.peerId}\n`)
      for (const addr of id.addrs) out.write(`  libp2p  ${addr}\n`)
      if (node.http != null) out.write(`  http    ${node.http.url}\n`)
      if (node.s3 != null) out.write(`  s3      ${node.s3.url} (keys: dsm key create)\n`)
      out.write(`  data    ${config.dataDir}\n`)
      const token = node.token
      out.write(token == null ? '  writes  open to anyone (--open)\n' : `  writes  need the cluster token${token.path != null ? ` (in ${token.path})` : ''}\n`)
      const keys = node.keys
      if (keys != null) {
        out.write(keys.source === 'config'
          ? '  secret  from the configuration (DSM_SECRET or dsm.json)\n'
          : `  secret  ${keys.source === 'generated' ? 'made for a new cluster, ' : ''}in ${keys.path ?? '?'}: other nodes join with DSM_SECRET=$(cat ${keys.path ?? '?'}) or --secret-file\n`)
      }
      const stop = async (signal: string): Promise<void> => {
        out.write(`${signal}: leaving the cluster…\n`)
        await node.stop()
        process.exit(0)
      }
      process.once('SIGINT', () => { void stop('SIGINT') })
      process.once('SIGTERM', () => { void stop('SIGTERM') })
      const assignment = await node.ready()
      out.write(assignment.group != null
        ? `  group   ${assignment.group} (${assignment.how}), state ${node.status.state}\n`
        : `  spare   waiting to be recruited, state ${node.status.state}\n`)
    })
}

export function registerSecretCommand (program: Command): void {
  program.command('secret')
    .description('print a new cluster secret (give it to every node: DSM_SECRET, --secret-file or dsm.json "secret")')
    .action(async () => {
      const { generateSecret } = await import('../../net/cluster-secret.ts')
      process.stdout.write(`${generateSecret()}\n`)
    })
}

export function registerSwarmKeyCommand (program: Command): void {
  program.command('swarm-key')
    .description('print a new network key for a private cluster (save it, give it to every node with --network-key)')
    .action(async () => {
      const { generateSwarmKey } = await import('../../net/private-network.ts')
      process.stdout.write(generateSwarmKey())
    })
}
