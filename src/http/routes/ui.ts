/** The web page: `/` and its assets under `/ui/`, read once from src/http/ui. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { RouteRegistrar } from '../server.ts'

const UI_DIR = join(import.meta.dirname, '..', 'ui')

const ASSETS: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8'
}

export function uiRoutes (): RouteRegistrar {
  const index = readFileSync(join(UI_DIR, 'index.html'))
  const assets = new Map(Object.entries(ASSETS).map(([name, type]) => [name, { type, body: readFileSync(join(UI_DIR, name)) }]))
  return (app) => {
    app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('Cache-Control', 'no-cache').send(index))
    app.get<{ Params: { name: string } }>('/ui/:name', async (req, reply) => {
      const asset = assets.get(req.params.name)
      if (asset == null) return reply.status(404).send({ code: 'ERR_NOT_FOUND', message: `no asset ${req.params.name}` })
      return reply.type(asset.type).header('Cache-Control', 'no-cache').send(asset.body)
    })
  }
}
