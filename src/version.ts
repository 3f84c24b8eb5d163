import pkg from '../package.json' with { type: 'json' }

/** dsm's version, as carried in heartbeats and `GET /api/id`. */
export const VERSION: string = pkg.version
