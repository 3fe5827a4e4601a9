// Q4_0 (ggml type 2): blocks of 32 values, the legacy ggml layout and reference quantiser of legacy.ts.
import type { QuantFormat } from "./types.js";
import { legacyFormat } from "./legacy.js";

export const Q4_0: QuantFormat = legacyFormat({ type: 2, name: "Q4_0", bits: 4, withMin: false });
