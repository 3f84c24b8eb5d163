/** Original file names travel in manifests and Content-Disposition: keep them harmless. */
import { MAX_FILE_NAME_BYTES } from '../constants.ts'
import { InvalidFileNameError } from '../errors.ts'

// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[/\\\u0000-\u001f\u007f]/

export function validateFileName (name: string): string {
  if (name.length === 0) throw new InvalidFileNameError('a file name is required (?name= or Content-Disposition)')
  if (new TextEncoder().encode(name).byteLength > MAX_FILE_NAME_BYTES) {
    throw new InvalidFileNameError(`file name is longer than ${MAX_FILE_NAME_BYTES} bytes (UTF-8)`)
  }
  if (FORBIDDEN.test(name)) throw new InvalidFileNameError('file name must not contain path separators or control characters')
  if (name === '.' || name === '..') throw new InvalidFileNameError(`"${name}" is not a file name`)
  return name
}
