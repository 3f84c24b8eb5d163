/**
 * The CLI's client of a node's HTTP API. Any node answers any request, so the
 * CLI talks to one (`--node URL`, env DSM_NODE, default http://127.0.0.1:8080).
 */
import { DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT } from '../constants.ts'
import { NodeUnreachableError, remoteError } from '../errors.ts'

/** Default timeout of a CLI call to a node's HTTP API. */
export const CLIENT_TIMEOUT_MS = 10_000

export const DEFAULT_NODE_URL = `http://${DEFAULT_HTTP_HOST}:${DEFAULT_HTTP_PORT}`

export class DsmClient {
  readonly baseUrl: string
  private readonly token?: string

  /** `token`: the cluster token, sent with every request (writes need it; reads may, on --signed-urls nodes). */
  constructor (baseUrl: string, token?: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, '')
    if (token != null && token !== '') this.token = token
  }

  /** fetch() against the node; network failures become NodeUnreachableError. */
  async fetch (path: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<Response> {
    const signal = init.signal ?? AbortSignal.timeout(init.timeoutMs ?? CLIENT_TIMEOUT_MS)
    let res: Response
    try {
      const headers = new Headers(init.headers)
      if (this.token != null) headers.set('authorization', `Bearer ${this.token}`)
      res = await fetch(`${this.baseUrl}${path}`, { ...init, headers, signal })
    } catch (err) {
      const e = err as Error & { cause?: { code?: string, message?: string } }
      const cause = e.name === 'TimeoutError' ? 'timed out' : e.cause?.code ?? e.cause?.message ?? e.message
      throw new NodeUnreachableError(`cannot reach a dsm node at ${this.baseUrl} (${cause}); is it running? Point the CLI at one with --node URL or DSM_NODE`)
    }
    if (!res.ok) throw await errorOf(res)
    return res
  }

  async json<T> (path: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<T> {
    const res = await this.fetch(path, init)
    return await res.json() as T
  }
}

async function errorOf (res: Response): Promise<Error> {
  const text = await res.text()
  try {
    const body = JSON.parse(text) as { code?: unknown, message?: unknown }
    if (typeof body.code === 'string' && typeof body.message === 'string') return remoteError(body.code, body.message)
  } catch {}
  return remoteError(`HTTP_${res.status}`, `${res.status} ${res.statusText}: ${text.slice(0, 200)}`)
}
