/**
 * Build the browser node from the same src/ modules as the Node binary:
 * dist/browser/dsm-p2p.js (the page's P2P engine and panel) and
 * dist/browser/sw.js (the service worker that answers the <video> element's
 * Range requests). Run by `npm install` (prepare), `npm start` and `npm test`.
 */
import { build } from 'esbuild'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..')
const common = { bundle: true, platform: 'browser' as const, target: 'es2022', sourcemap: true, logLevel: 'warning' as const, legalComments: 'none' as const }
await build({ ...common, entryPoints: [join(root, 'src/browser/main.ts')], outfile: join(root, 'dist/browser/dsm-p2p.js'), format: 'esm' })
await build({ ...common, entryPoints: [join(root, 'src/browser/sw.ts')], outfile: join(root, 'dist/browser/sw.js'), format: 'iife' })
process.stdout.write('built dist/browser/dsm-p2p.js and dist/browser/sw.js\n')
