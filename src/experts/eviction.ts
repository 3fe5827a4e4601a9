// The interface every expert cache ranks its evictions through, and LRU, the default. Apart from the cache so
// the policies, the slot table and trace replay depend on the interface alone, not on streaming-source.ts.

/** Which unpinned cached expert to evict; keys are opaque numbers. */
export interface EvictionPolicy {
  /** `key` entered the cache or was used again. */
  touch(key: number): void;
  /** `key` left the cache. */
  remove(key: number): void;
  /**
   * The key to evict next among those `evictable` accepts (unpinned), or undefined; `incoming` is the key
   * whose miss needs the slot (it is touched next), for policies that budget by it (per-layer quotas).
   */
  victim(evictable: (key: number) => boolean, incoming?: number): number | undefined;
  /**
   * An acquire() of these keys (one layer's experts for the current token, or a prefill batch's) starts,
   * before any of them is touched or evicted for: what the forward is routing now, for policies that
   * predict the next token's routing from it (markov-policy.ts). Background fills do not call it.
   */
  begin?(keys: readonly number[]): void;
}

/** Least recently used: a Map keeps insertion order, so re-inserting on use makes the first key the oldest. */
export class LruPolicy implements EvictionPolicy {
  private readonly order = new Map<number, true>();
  touch(key: number): void {
    this.order.delete(key);
    this.order.set(key, true);
  }
  remove(key: number): void {
    this.order.delete(key);
  }
  victim(evictable: (key: number) => boolean): number | undefined {
    for (const k of this.order.keys()) if (evictable(k)) return k;
    return undefined;
  }
}
