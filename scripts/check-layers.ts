/**
 * The import-layer check (`npm run lint`): every module of src/ imports only
 * its own folder and folders of a lower layer (docs/architecture.md has the
 * picture), and the modules of one folder import each other without a cycle.
 * Type-only imports count too — a type that points up is the same knot.
 * Exits 1 listing every import that points up or sideways, and every cycle.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative, sep } from 'node:path'

/** Bottom first. Folders on one line share a layer and must not import each other. */
export const LAYERS: string[][] = [
  ['(root)'], // constants.ts, errors.ts, logger.ts, version.ts
  ['util'],
  ['wire'],
  ['content'],
  ['media'], // ffmpeg and ffprobe: finding them, probing sources
  ['store'],
  ['net'],
  ['membership'],
  ['dht'],
  ['stream'],
  ['replica'],
  ['video'], // video packages: HLS ladders, posters, storyboards; their jobs
  ['http', 'browser'],
  ['s3'], // the S3 listener, built on the HTTP limits
  ['node'],
  ['cli']
]

const SRC = join(import.meta.dirname, '..', 'src')
const SPECIFIER = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g

function layerOf (folder: string): number {
  const i = LAYERS.findIndex(l => l.includes(folder))
  if (i < 0) throw new Error(`src/${folder} is in no layer: add it to LAYERS in scripts/check-layers.ts (and to docs/architecture.md)`)
  return i
}

function folderOf (file: string): string {
  const parts = relative(SRC, file).split(sep)
  return parts.length > 1 ? parts[0] as string : '(root)'
}

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sources(path)
    return path.endsWith('.ts') ? [path] : []
  })
}

export function violations (): string[] {
  const out: string[] = []
  /** Imports between modules of one folder: they must not form a cycle either. */
  const within = new Map<string, string[]>()
  for (const file of sources(SRC)) {
    const from = folderOf(file)
    for (const m of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const target = normalize(join(dirname(file), (m[1] ?? m[2]) as string))
      if (!target.startsWith(SRC + sep)) continue // package.json (version.ts)
      const to = folderOf(target)
      if (to === from) {
        within.set(file, [...(within.get(file) ?? []), target])
        continue
      }
      if (layerOf(to) >= layerOf(from)) out.push(`${relative(SRC, file)} imports ${relative(SRC, target)}: src/${to} is not below src/${from}`)
    }
  }
  for (const cycle of cycles(within)) out.push(`an import cycle: ${cycle.map(f => relative(SRC, f)).join(' → ')}`)
  return out
}

/** Each cycle of the graph once (depth-first search; a cycle is reported from the module where it was found). */
function cycles (edges: Map<string, string[]>): string[][] {
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (node: string): void => {
    state.set(node, 'open')
    path.push(node)
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...path.slice(path.indexOf(next)), next])
      else if (state.get(next) == null) visit(next)
    }
    path.pop()
    state.set(node, 'done')
  }
  for (const node of edges.keys()) if (state.get(node) == null) visit(node)
  return found
}

if (import.meta.main) {
  const found = violations()
  for (const v of found) process.stderr.write(`layers: ${v}\n`)
  if (found.length > 0) process.exit(1)
  process.stdout.write(`layers: ${sources(SRC).length} modules, every import points down, no cycle within a folder\n`)
}
