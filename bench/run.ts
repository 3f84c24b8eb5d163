/**
 * `npm run bench -- <name> [options]`: run one benchmark; each prints a table
 * and writes bench/results/<name>.json. Names: see BENCHES.
 */
const BENCHES: Record<string, string> = {
  transport: './transport.ts',
  upload: './upload.ts',
  stream: './stream.ts',
  browser: './browser.ts',
  dht: './dht.ts',
  load: './load.ts',
  startup: './startup.ts',
  cli: './cli.ts',
  s3: './s3.ts',
  hls: './hls.ts',
  profile: './profile.ts'
}

const [name, ...rest] = process.argv.slice(2)
const file = name == null ? undefined : BENCHES[name]
if (file == null) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [options]\n`)
  process.exit(2)
}
const mod = await import(file) as { run: (args: string[]) => Promise<void> }
await mod.run(rest)
process.exit(0)
