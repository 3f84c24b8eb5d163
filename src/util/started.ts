/**
 * Wait for the first piece of a read, then hand back the whole stream: once
 * the status line is out, a failure can only cut the body short, but a read
 * that cannot start at all still gets an error status the client can act on.
 */
export async function started (source: AsyncIterable<Uint8Array>): Promise<AsyncIterable<Uint8Array>> {
  const it = source[Symbol.asyncIterator]()
  const first = await it.next()
  return (async function * () {
    try {
      if (first.done === true) return
      yield first.value
      for (let next = await it.next(); next.done !== true; next = await it.next()) yield next.value
    } finally {
      await it.return?.()
    }
  })()
}
