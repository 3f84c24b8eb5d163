/**
 * Local time for judging freshness (how long since we last heard from a
 * member): milliseconds comparable to Date.now() when the process started,
 * but driven by the monotonic clock, so a wall-clock step (NTP, an operator)
 * neither ages nor revives anyone.
 */
export function monotonicNow (): number {
  return Math.floor(performance.timeOrigin + performance.now())
}
