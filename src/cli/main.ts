/**
 * The `dsm` command line (commander). `bin/dsm` runs this file with the
 * pinned Node. Exit codes: 0 success, 1 failure, 2 bad usage or config.
 */
import { Command, CommanderError, Option } from 'commander'
import { DsmError } from '../errors.ts'
import { VERSION } from '../version.ts'
import { DEFAULT_NODE_URL } from './client.ts'
import { registerClusterCommands } from './commands/cluster.ts'
import { registerFileCommands } from './commands/files.ts'
import { registerKeyCommands } from './commands/keys.ts'
import { registerVideoCommands } from './commands/video.ts'
import { registerNodeCommand, registerSecretCommand, registerSwarmKeyCommand } from './commands/node.ts'

export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

function withClient (cmd: Command): Command {
  return cmd
    .addOption(new Option('--node <url>', 'HTTP address of any dsm node').env('DSM_NODE').default(DEFAULT_NODE_URL))
    .addOption(new Option('--token <token>', 'cluster token for writes (prefer the env var: arguments show in ps)').env('DSM_TOKEN'))
    .option('--json', 'machine-readable output')
}

export function buildProgram (): Command {
  const program = new Command('dsm')
    .description('dsm: a peer-to-peer distributed streaming-media store')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
  registerNodeCommand(program)
  registerSwarmKeyCommand(program)
  registerSecretCommand(program)
  registerClusterCommands(program, withClient)
  registerFileCommands(program, withClient)
  registerKeyCommands(program, withClient)
  registerVideoCommands(program, withClient)
  return program
}

export async function main (argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv)
    return 0
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version also end as CommanderErrors, with exit code 0.
      return err.exitCode === 0 ? 0 : EXIT_USAGE
    }
    const e = err instanceof Error ? err : new Error(String(err))
    process.stderr.write(`dsm: ${e.message}\n`)
    return e instanceof DsmError && e.name === 'InvalidConfigError' ? EXIT_USAGE : EXIT_FAILURE
  }
}

if (import.meta.main) {
  const code = await main(process.argv)
  // `dsm node` keeps running until a signal; every other command ends here.
  if (code !== 0 || process.argv[2] !== 'node') process.exit(code)
}
