// Q4_1 (ggml type 3): blocks of 32 values, the legacy ggml layout and reference quantiser of legacy.ts.
import type { QuantFormat } from "./types.js";
import { legacyFormat } from "./legacy.js";

export const Q4_1: QuantFormat = legacyFormat({ type: 3, name: "Q4_1", bits: 4, withMin: true });
