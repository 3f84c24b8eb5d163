/**
 * Space on the data disk, counted once per byte: what a transfer reserved up
 * front (an upload with a Content-Length) and what was written since the
 * last statfs are subtracted from the free space it reported, so a check per
 * chunk costs no system call, and nothing is stored below the reserve. The
 * disk is asked at most every CAPACITY_REFRESH_MS, one statfs shared by the
 * claims that wait for it; each claim checks and counts in one turn after
 * it, so two claims never both see the same free space.
 */
import { InsufficientStorageError } from '../errors.ts'
import { sizeOf } from '../util/size.ts'
import type { SizeSpec } from '../util/size.ts'

/** How long a statfs of the data disk is trusted (writes in between are counted locally). */
export const CAPACITY_REFRESH_MS = 1_000

/** The data disk's size and free bytes (statfs). */
export interface Capacity { total: number, free: number }

/** Space held for one transfer (see SpaceAccount.reserve). */
export interface SpaceReservation {
  /** Bytes still reserved and not written. */
  left: number
  release(): void
}

export class SpaceAccount {
  private readonly reserveSpec: SizeSpec
  private readonly capacityOf: () => Promise<Capacity>
  private capacity?: Capacity & { at: number }
  /** Bytes written since the last statfs (the file system does not show them yet). */
  private writtenBytes = 0
  /** Bytes reserved by transfers and not written yet. */
  private reservedBytes = 0
  /** The statfs in flight: concurrent claims share it. */
  private refreshing?: Promise<void>

  constructor (reserve: SizeSpec, capacity: () => Promise<Capacity>) {
    this.reserveSpec = reserve
    this.capacityOf = capacity
  }

  /** Bytes to keep free: the configured reserve of the disk. */
  async reserveBytes (): Promise<number> {
    return sizeOf(this.reserveSpec, (await this.capacityOf()).total)
  }

  /** Hold `bytes` for a transfer, or throw InsufficientStorageError (507); `release` gives back what was not used. */
  async reserve (bytes: number): Promise<SpaceReservation> {
    await this.claim(bytes, 'reserve')
    const reservation: SpaceReservation = {
      left: bytes,
      release: () => {
        this.reservedBytes -= reservation.left
        reservation.left = 0
      }
    }
    return reservation
  }

  /** Count `bytes` about to be written, drawing on `reservation` first; throw if what is left over does not fit. */
  async ensure (bytes: number, reservation?: SpaceReservation): Promise<void> {
    const covered = Math.min(bytes, reservation?.left ?? 0)
    if (reservation != null && covered > 0) {
      reservation.left -= covered
      this.reservedBytes -= covered
      this.writtenBytes += covered
    }
    if (bytes > covered) await this.claim(bytes - covered, 'write')
  }

  /** Count `bytes` as reserved or written, or throw unless they fit above the reserve. */
  private async claim (bytes: number, as: 'reserve' | 'write'): Promise<void> {
    if (this.capacity == null || Date.now() - this.capacity.at > CAPACITY_REFRESH_MS) {
      this.refreshing ??= this.refresh().finally(() => { this.refreshing = undefined })
      await this.refreshing
    }
    const { free, total } = this.capacity as Capacity
    const reserve = sizeOf(this.reserveSpec, total)
    const available = free - this.writtenBytes - this.reservedBytes
    if (available - bytes < reserve) {
      throw new InsufficientStorageError(`storing ${bytes} more bytes would leave ${Math.max(0, available - bytes)} free, below the reserve of ${reserve} bytes`)
    }
    if (as === 'reserve') this.reservedBytes += bytes
    else this.writtenBytes += bytes
  }

  private async refresh (): Promise<void> {
    const at = Date.now()
    const capacity = await this.capacityOf()
    this.capacity = { ...capacity, at }
    // The file system now counts what we wrote; reservations not yet written stay ours.
    this.writtenBytes = 0
  }
}
