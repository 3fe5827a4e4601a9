// ggml's reference weight quantisers (quant_ref.c), for the model generator.
#pragma once
#include <stdbool.h>
#include <stdint.h>

/** Values per block of ggml type `type` (bytes per block into *bytes), or 0 where quant_ref has no quantiser for it. */
int quant_ref_block(int type, int *bytes);
/** The ggml type ids quant_ref quantises, into types[0..max); returns how many. */
int quant_ref_types(int *types, int max);
/** Encode nblocks blocks of f32 values x into y as ggml's quantize_row_<type>_ref does, over the pool when there
 *  are many; returns -1 for a type without a quantiser here. */
int quant_ref_run(int type, const float *x, void *y, int64_t nblocks);
