/**
 * The web page: `/` and its assets under `/ui/` (read once from
 * src/http/ui), plus the browser P2P bundle and its service worker from
 * dist/browser (built by `npm run build:browser`; without them the page
 * simply plays over HTTP).
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { RouteRegistrar } from '../server.ts'

const UI_DIR = join(import.meta.dirname, '..', 'ui')
const BUNDLE_DIR = join(import.meta.dirname, '..', '..', '..', 'dist', 'browser')
/** hls.js, served as it is published (its ES module build): the page plays HLS with it. */
const HLS_DIR = dirname(createRequire(import.meta.url).resolve('hls.js/package.json'))
const JS = 'text/javascript; charset=utf-8'

const ASSETS: Record<string, [string, string]> = {
  'app.js': [UI_DIR, JS],
  'hls-player.js': [UI_DIR, JS],
  'hls.min.mjs': [join(HLS_DIR, 'dist'), JS],
  'style.css': [UI_DIR, 'text/css; charset=utf-8'],
  'dsm-p2p.js': [BUNDLE_DIR, JS],
  'dsm-p2p.js.map': [BUNDLE_DIR, 'application/json']
}

function load (dir: string, name: string): Buffer | undefined {
  const path = join(dir, name)
  return existsSync(path) ? readFileSync(path) : undefined
}

export function uiRoutes (): RouteRegistrar {
  const index = readFileSync(join(UI_DIR, 'index.html'))
  const assets = new Map(Object.entries(ASSETS).flatMap(([name, [dir, type]]) => {
    const body = load(dir, name)
    return body == null ? [] : [[name, { type, body }] as const]
  }))
  const sw = load(BUNDLE_DIR, 'sw.js')
  return (app) => {
    app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-cache').send(index))
    app.get<{ Params: { name: string } }>('/ui/:name', async (req, reply) => {
      const asset = assets.get(req.params.name)
      if (asset == null) return reply.status(404).send({ code: 'ERR_NOT_FOUND', message: `no asset ${req.params.name}${req.params.name.startsWith('dsm-p2p') ? ' (build it with npm run build:browser)' : ''}` })
      return reply.type(asset.type).header('Cache-Control', 'no-cache').send(asset.body)
    })
    // At the root, so that its scope covers /p2p/ (where the player's requests go).
    app.get('/sw.js', async (_req, reply) => sw == null
      ? reply.status(404).send({ code: 'ERR_NOT_FOUND', message: 'the service worker is not built (npm run build:browser)' })
      : reply.type(JS).header('Cache-Control', 'no-cache').send(sw))
  }
}
