// Q5_1 (ggml type 7): blocks of 32 values, the legacy ggml layout and reference quantiser of legacy.ts.
import type { QuantFormat } from "./types.js";
import { legacyFormat } from "./legacy.js";

export const Q5_1: QuantFormat = legacyFormat({ type: 7, name: "Q5_1", bits: 5, withMin: true });
