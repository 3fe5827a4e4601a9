// IQ4_NL on the WebGPU backend: Q4_0's 18-byte block (f16 d, 16 bytes of nibbles) with each nibble an index into
// kvalues_iq4nl (iq4_xs.ts's KQ): value d·KQ[q]. Repacked and read as the legacy types (legacy.ts).
import { KQ } from "./iq4_xs.js";
import { legacyQuant } from "./legacy.js";

export const IQ4_NL_GPU = legacyQuant({ type: 20, bits: 4, withMin: false, table: KQ });
