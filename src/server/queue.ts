// One generation at a time, first come first served, with a bounded waiting line.
import { ApiError } from "./errors.js";

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (e: unknown) => void;
}

export class RequestQueue {
  private busy = false;
  private readonly waiting: Waiter[] = [];
  constructor(readonly maxWaiting: number) {}

  get depth(): number {
    return this.waiting.length;
  }
  get running(): number {
    return this.busy ? 1 : 0;
  }

  /** Resolves with a release function once it is this caller's turn; 429 when the line is full. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new ApiError(499, "client closed the request"));
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.maxWaiting) {
      return Promise.reject(new ApiError(429, `server busy: ${this.waiting.length} requests already waiting; retry later`, null, "queue_full"));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      this.waiting.push(w);
      signal?.addEventListener("abort", () => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) {
          this.waiting.splice(i, 1);
          reject(new ApiError(499, "client closed the request"));
        }
      }, { once: true });
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) next.resolve(this.releaser());
      else this.busy = false;
    };
  }
}
