/** Test data: seeded random bytes and digests. */
import { createHash } from 'node:crypto'
import { createRng } from '../sim/rng.ts'

export function randomBytes (size: number, seed = 1): Uint8Array<ArrayBuffer> {
  return createRng(seed).bytes(size)
}

export function sha256hex (data: Uint8Array | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Upload bytes to a node's HTTP API; returns the JSON answer and status. */
export async function upload (url: string, data: Uint8Array<ArrayBuffer>, name: string, query: Record<string, string> = {}): Promise<{ status: number, body: Record<string, unknown> }> {
  const qs = new URLSearchParams({ name, ...query })
  const res = await fetch(`${url}/files?${qs.toString()}`, { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream' } })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

export async function download (url: string, id: string, headers: Record<string, string> = {}): Promise<{ status: number, bytes: Uint8Array, headers: Headers }> {
  const res = await fetch(`${url}/files/${id}`, { headers })
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()), headers: res.headers }
}
