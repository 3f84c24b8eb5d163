/** Original file names and media types travel in manifests and HTTP headers: keep them harmless. */
import { BadRequestError, InvalidFileNameError } from '../errors.ts'

/** Longest original file name, in UTF-8 bytes (the common file-system limit). */
export const MAX_FILE_NAME_BYTES = 255

// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[/\\\u0000-\u001f\u007f]/

/** A media type as dsm stores it: `type/subtype`, no parameters, nothing that could break a header. */
export const MIME_PATTERN = /^[\w.+-]+\/[\w.+-]+$/

const utf8 = new TextEncoder()

/** Why `name` is not acceptable, or undefined when it is. */
export function fileNameProblem (name: string): string | undefined {
  if (name.length === 0) return 'a file name is required (?name= or Content-Disposition)'
  // At most 3 UTF-8 bytes per UTF-16 unit: a short name needs no encoding (every manifest is checked here).
  if (name.length > MAX_FILE_NAME_BYTES / 3 && utf8.encode(name).byteLength > MAX_FILE_NAME_BYTES) return `file name is longer than ${MAX_FILE_NAME_BYTES} bytes (UTF-8)`
  if (FORBIDDEN.test(name)) return 'file name must not contain path separators or control characters'
  if (name === '.' || name === '..') return `"${name}" is not a file name`
  return undefined
}

export function validateFileName (name: string): string {
  const problem = fileNameProblem(name)
  if (problem != null) throw new InvalidFileNameError(problem)
  return name
}

export function validateMime (mime: string): string {
  if (!MIME_PATTERN.test(mime) || mime.length > 255) throw new BadRequestError(`"${mime.slice(0, 60)}" is not a media type (type/subtype)`)
  return mime
}
