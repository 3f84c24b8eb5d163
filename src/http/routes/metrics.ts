/**
 * `GET /metrics`: the node's metrics in the Prometheus text format. No auth,
 * like /healthz: no label names a file, a file ID or a client, only routes
 * (patterns such as `/files/:id`, never the raw URL), states and counts.
 *
 * Also counts every HTTP request of the node. The onResponse hook goes on the
 * root app, which every registrar here is given, so it covers the routes of
 * all modules — those of child plugins (uploads) and the 404 handler too,
 * whatever the order in which the modules registered.
 */
import type { RequestSample } from '../metrics.ts'
import type { RouteRegistrar } from '../server.ts'

export interface MetricsApi {
  /** The exposition text and its content type; throws NotStartedError (503) while the node starts. */
  scrape(): Promise<{ contentType: string, text: string }>
  observeRequest(sample: RequestSample): void
}

/** The label for requests that matched no route: one series, not one per URL probed. */
const UNMATCHED_ROUTE = 'unmatched'

export function metricsRoutes (api: MetricsApi): RouteRegistrar {
  return (app) => {
    app.addHook('onResponse', async (req, reply) => {
      api.observeRequest({
        method: req.method,
        route: req.routeOptions.url ?? UNMATCHED_ROUTE,
        status: reply.statusCode,
        seconds: reply.elapsedTime / 1000
      })
    })
    app.get('/metrics', async (_req, reply) => {
      const { contentType, text } = await api.scrape()
      return reply.type(contentType).header('Cache-Control', 'no-store').send(text)
    })
  }
}
