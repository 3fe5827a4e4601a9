// Counts host readbacks (Backend.read / readMany calls): each is a device sync on a GPU, so the seams
// target one per MoE layer plus the logits. Wraps the backend object in place; works on older builds too.
export function countReadbacks(be: object): { readonly n: number } {
  const c = { n: 0 };
  const o = be as Record<string, unknown>;
  for (const m of ["read", "readMany"]) {
    const f = o[m];
    if (typeof f === "function") o[m] = (...args: unknown[]) => (c.n++, (f as (...a: unknown[]) => unknown).apply(be, args));
  }
  return c;
}
