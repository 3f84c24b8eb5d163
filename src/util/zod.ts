import type { z } from 'zod'

/** One line per problem, `path: message`, joined with "; " (fits a log line or a CLI error). */
export function formatZodError (error: z.ZodError): string {
  return error.issues.map(i => {
    const path = i.path.map(p => typeof p === 'number' ? `[${p}]` : `.${String(p)}`).join('').replace(/^\./, '')
    return path === '' ? i.message : `${path}: ${i.message}`
  }).join('; ')
}
