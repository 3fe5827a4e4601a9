// Which expert holds which of a cache's fixed-size slots, for the host byte cache (streaming-source.ts) and the
// device tier above it (device-tier.ts): entries by key, their pins, free slots, and eviction by a policy among
// the unpinned. The caller keeps its own counters and what an entry holds.
import type { EvictionPolicy } from "./eviction.js";

export interface SlotEntry {
  readonly key: number;
  readonly slot: number;
  /** Unreleased acquires holding it: never evicted while > 0. */
  pins: number;
}

export class SlotTable<E extends SlotEntry> {
  readonly entries = new Map<number, E>();
  /** Entries with pins > 0 (a few acquires' worth), so fit checks need not scan every cached expert. */
  private readonly pinnedEntries = new Set<E>();
  private readonly freeSlots: number[] = [];
  private nextFresh = 0;

  constructor(readonly nSlots: number, readonly policy: EvictionPolicy) {}

  /** A new entry: in the table, touched, pinned if it has pins. */
  add(en: E): void {
    this.entries.set(en.key, en);
    if (en.pins > 0) this.pinnedEntries.add(en);
    this.policy.touch(en.key);
  }

  /** An entry whose slot never filled leaves, its slot free again. */
  drop(en: E): void {
    if (this.entries.get(en.key) === en) this.entries.delete(en.key);
    this.policy.remove(en.key);
    this.freeSlots.push(en.slot);
  }

  pin(en: E): void {
    if (en.pins++ === 0) this.pinnedEntries.add(en);
  }
  unpin(en: E): void {
    if (en.pins > 0 && --en.pins === 0) this.pinnedEntries.delete(en);
  }

  /** Pinned entries still in the table, besides those with keys in `except`. */
  pinned(except?: ReadonlySet<number>): number {
    let n = 0;
    for (const en of this.pinnedEntries) if (this.entries.get(en.key) === en && !except?.has(en.key)) n++;
    return n;
  }

  /** The policy's victim among unpinned entries whose keys are not in `protect`, left in the table. */
  victim(protect: ReadonlySet<number>, incoming: number): number | undefined {
    return this.policy.victim((k) => (this.entries.get(k)?.pins ?? 1) === 0 && !protect.has(k), incoming);
  }

  /**
   * A slot for `incoming`: a free one, a never used one, or the policy's victim among unpinned entries whose keys
   * are not in `protect` (it leaves the table; `evicted` says so). The caller checked that an unpinned one exists.
   */
  take(incoming: number, protect: ReadonlySet<number>): { slot: number; evicted: boolean } {
    const free = this.freeSlots.pop();
    if (free !== undefined) return { slot: free, evicted: false };
    if (this.nextFresh < this.nSlots) return { slot: this.nextFresh++, evicted: false };
    const victim = this.victim(protect, incoming);
    if (victim === undefined) throw new Error("internal: no evictable expert slot");
    const en = this.entries.get(victim)!;
    this.entries.delete(victim);
    this.policy.remove(victim);
    return { slot: en.slot, evicted: true };
  }
}
