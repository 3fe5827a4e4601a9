// Q5_0 (ggml type 6): blocks of 32 values, the legacy ggml layout and reference quantiser of legacy.ts.
import type { QuantFormat } from "./types.js";
import { legacyFormat } from "./legacy.js";

export const Q5_0: QuantFormat = legacyFormat({ type: 6, name: "Q5_0", bits: 5, withMin: false });
