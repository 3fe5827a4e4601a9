// The i-quants (ggml's IQ* types): decoded bit-exactly with ggml. IQ4_NL and IQ4_XS also encode, as ggml's
// plain references do; the others need an importance matrix in ggml and are dequantOnly here: files with them
// come from llama.cpp's llama-quantize, or from the generator's sampling in the quantised domain (gen/direct-iq.ts).
import type { QuantFormat } from "./types.js";
import { IQ2_XXS } from "./iq2_xxs.js";
import { IQ2_XS } from "./iq2_xs.js";
import { IQ2_S } from "./iq2_s.js";
import { IQ3_XXS } from "./iq3_xxs.js";
import { IQ3_S } from "./iq3_s.js";
import { IQ1_S } from "./iq1_s.js";
import { IQ1_M } from "./iq1_m.js";
import { IQ4_NL } from "./iq4_nl.js";
import { IQ4_XS } from "./iq4_xs.js";

export { IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, IQ4_NL, IQ4_XS };

/** The i-quant formats, in ggml type-id order. */
export const IQ_FORMATS: readonly QuantFormat[] = [IQ2_XXS, IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, IQ1_M];
