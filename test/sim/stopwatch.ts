/**
 * Wall and CPU time of a phase of a simulation run: the CPU of the process
 * (all threads, so up to 200 % on two cores) tells a phase that computes
 * from one that waits.
 */
export class Stopwatch {
  private startedAt = Date.now()
  private cpuAt = process.cpuUsage()

  /** When it started (or last lapped), ms since the epoch. */
  get startedMs (): number { return this.startedAt }

  /** "12 s (CPU 118 %)" since the start. */
  toString (): string {
    const wallMs = Date.now() - this.startedAt
    const used = process.cpuUsage(this.cpuAt)
    return `${(wallMs / 1000).toFixed(0)} s (CPU ${Math.round(100 * (used.user + used.system) / 1000 / Math.max(1, wallMs))} %)`
  }

  /** What toString says, then start again. */
  lap (): string {
    const said = this.toString()
    this.startedAt = Date.now()
    this.cpuAt = process.cpuUsage()
    return said
  }
}
