/**
 * S3 access keys over HTTP (what `dsm key` calls): POST /api/keys makes one
 * and answers its secret (the only time it is shown), GET /api/keys lists
 * them without secrets, DELETE /api/keys/:id removes one. All need the
 * cluster token (a key is a write right).
 */
import { z } from 'zod'
import { BadRequestError } from '../../errors.ts'
import type { HttpAuth } from '../auth.ts'
import type { AccessKey, AccessKeySpec } from '../../replica/access-keys.ts'
import type { RouteRegistrar } from '../server.ts'
import type { AbortOptions } from '@libp2p/interface'

export interface KeysApi {
  create (spec: AccessKeySpec, options: AbortOptions): Promise<AccessKey>
  list (options: AbortOptions): Promise<AccessKey[]>
  delete (accessKeyId: string, options: AbortOptions): Promise<void>
}

const CreateSchema = z.object({
  buckets: z.array(z.string().max(63)).max(100).default([]),
  read: z.boolean().default(true),
  write: z.boolean().default(true),
  name: z.string().max(128).optional()
}).strict()

export function keyRoutes (api: () => KeysApi, auth: HttpAuth): RouteRegistrar {
  return (app) => {
    app.post<{ Body: unknown }>('/api/keys', async (req, reply) => {
      auth.requireToken(req.headers.authorization)
      const body = CreateSchema.safeParse(req.body ?? {})
      if (!body.success) throw new BadRequestError('expected JSON {"buckets": [...], "read": bool, "write": bool, "name": string}')
      const { name, ...rest } = body.data
      return reply.status(201).send(await api().create({ ...rest, ...(name != null ? { name } : {}) }, { signal: AbortSignal.timeout(30_000) }))
    })
    app.get('/api/keys', async (req) => {
      auth.requireToken(req.headers.authorization)
      return api().list({ signal: AbortSignal.timeout(30_000) })
    })
    app.delete<{ Params: { id: string } }>('/api/keys/:id', async (req, reply) => {
      auth.requireToken(req.headers.authorization)
      await api().delete(req.params.id, { signal: AbortSignal.timeout(30_000) })
      return reply.status(204).send()
    })
  }
}
