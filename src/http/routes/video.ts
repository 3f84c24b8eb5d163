/**
 * Video packages over HTTP: asking for one (POST /api/files/:id/hls, or
 * ?hls=1 on the upload), its status and cancelling it, the jobs of the
 * cluster (GET /api/jobs), and the package itself on every node:
 *
 *   /files/:id/hls/master.m3u8
 *   /files/:id/hls/:rendition/index.m3u8
 *   /files/:id/hls/:rendition/<file id>.m4s|.mp4   (only files its playlist names)
 *   /files/:id/poster.jpg, /files/:id/storyboard.jpg, /files/:id/storyboard.vtt
 *
 * The source's download rules cover its whole package: with --signed-urls,
 * a URL signed for the source opens the package, and the playlists served
 * carry the same signature on every URI they name. Players on other
 * origins may read it all (CORS).
 */
import { parseFileId } from '../../content/manifest.ts'
import { withQuery } from '../../media/playlist.ts'
import { clientSignal, sendFile, single } from './files.ts'
import type { FilesApi } from './files.ts'
import type { HttpAuth } from '../auth.ts'
import type { RouteRegistrar } from '../server.ts'
import type { PackageStatus } from '../../video/package-ops.ts'
import type { PreviewPart } from '../../video/serving.ts'
import type { AbortOptions } from '@libp2p/interface'
import type { FastifyReply, FastifyRequest } from 'fastify'

export const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl'
/** How long a finished playlist may be cached (a package can be removed with its source, so not forever). */
const PLAYLIST_MAX_AGE_S = 300

export interface VideoApi {
  request(id: string, options: AbortOptions): Promise<PackageStatus>
  status(id: string, options: AbortOptions): Promise<PackageStatus | undefined>
  cancel(id: string, options: AbortOptions): Promise<PackageStatus>
  list(options: AbortOptions): Promise<{ packages: PackageStatus[], unavailable: string[] }>
  master(id: string, options: AbortOptions): Promise<{ text: string, final: boolean }>
  mediaPlaylist(id: string, rendition: string, options: AbortOptions): Promise<string>
  segment(id: string, rendition: string, file: string, options: AbortOptions): Promise<string>
  preview(id: string, part: PreviewPart, options: AbortOptions): Promise<string>
}

type Req = FastifyRequest<{ Params: { id: string, rendition?: string, file?: string }, Querystring: Record<string, string | undefined> }>

function cors (reply: FastifyReply): FastifyReply {
  return reply.header('Access-Control-Allow-Origin', '*')
    .header('Access-Control-Expose-Headers', 'Content-Length, Content-Range, Accept-Ranges, ETag')
}

const PREVIEWS: Record<string, PreviewPart> = { 'poster.jpg': 'poster', 'storyboard.jpg': 'sprite', 'storyboard.vtt': 'vtt' }

export function videoRoutes (video: () => VideoApi, files: Pick<FilesApi, 'open' | 'read' | 'recycle' | 'readSmall'>, auth: HttpAuth): RouteRegistrar {
  /** The source ID, once the client may read the source (and so its package); the signature to pass on. */
  const allowed = (req: Req): { id: string, query: string } => {
    const id = parseFileId(req.params.id).toString()
    const expires = single(req.query, 'expires')
    const sig = single(req.query, 'sig')
    auth.checkDownload(id, { expires, sig }, req.headers.authorization)
    return { id, query: expires != null && sig != null ? `expires=${encodeURIComponent(expires)}&sig=${encodeURIComponent(sig)}` : '' }
  }
  const playlist = (reply: FastifyReply, text: string, query: string, final: boolean): FastifyReply => cors(reply)
    .type(PLAYLIST_TYPE)
    .header('Cache-Control', final ? `${query !== '' ? 'private' : 'public'}, max-age=${PLAYLIST_MAX_AGE_S}` : 'no-store')
    .send(withQuery(text, query))
  return (app) => {
    app.post<{ Params: { id: string } }>('/api/files/:id/hls', async (req, reply) => {
      auth.requireToken(req.headers.authorization)
      return reply.status(202).send(await video().request(parseFileId(req.params.id).toString(), { signal: clientSignal(req, reply) }))
    })
    app.get<{ Params: { id: string } }>('/api/files/:id/hls', async (req, reply) => {
      const status = await video().status(parseFileId(req.params.id).toString(), { signal: clientSignal(req, reply) })
      return status ?? reply.status(404).send({ code: 'ERR_NO_SUCH_PACKAGE', message: `${req.params.id} has no video package` })
    })
    app.delete<{ Params: { id: string } }>('/api/files/:id/hls', async (req, reply) => {
      auth.requireToken(req.headers.authorization)
      return video().cancel(parseFileId(req.params.id).toString(), { signal: clientSignal(req, reply) })
    })
    app.get('/api/jobs', async (req, reply) => video().list({ signal: clientSignal(req, reply) }))

    app.get('/files/:id/hls/master.m3u8', async (req: Req, reply) => {
      const { id, query } = allowed(req)
      const { text, final } = await video().master(id, { signal: clientSignal(req, reply) })
      return playlist(reply, text, query, final)
    })
    app.get('/files/:id/hls/:rendition/index.m3u8', async (req: Req, reply) => {
      const { id, query } = allowed(req)
      return playlist(reply, await video().mediaPlaylist(id, req.params.rendition ?? '', { signal: clientSignal(req, reply) }), query, true)
    })
    app.route({
      method: ['GET', 'HEAD'],
      url: '/files/:id/hls/:rendition/:file',
      handler: async (req: Req, reply) => {
        const { id } = allowed(req)
        const file = await video().segment(id, req.params.rendition ?? '', req.params.file ?? '', { signal: clientSignal(req, reply) })
        return sendFile(files, file, req, cors(reply))
      }
    })
    for (const [name, part] of Object.entries(PREVIEWS)) {
      app.route({
        method: ['GET', 'HEAD'],
        url: `/files/:id/${name}`,
        handler: async (req: Req, reply) => {
          const { id } = allowed(req)
          return sendFile(files, await video().preview(id, part, { signal: clientSignal(req, reply) }), req, cors(reply))
        }
      })
    }
    // Preflight of a cross-origin player (Range is not a simple header).
    app.options('/files/:id/*', async (_req, reply) => cors(reply)
      .header('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS')
      .header('Access-Control-Allow-Headers', 'Range, Authorization')
      .header('Access-Control-Max-Age', '86400')
      .status(204).send())
  }
}
