// Node-API bindings of the reference weight quantisers (quant_ref.c): quantizeRef(type, x, out) encodes all of x
// into out as ggml's quantize_row_<type>_ref would, on the pool; quantizeRefTypes() lists the types it takes.
#include <stdint.h>

#include "napi_args.h"
#include "quant_ref.h"

napi_value js_quantize_ref(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  int64_t type;
  float *x;
  size_t n, olen;
  void *out;
  if (!int_arg(env, a[0], "type", 0, INT32_MAX, &type) || !f32_arg(env, a[1], "x", &x, &n) || !bytes_arg(env, a[2], "out", &out, &olen))
    return NULL;
  int bytes = 0;
  const int qk = quant_ref_block((int)type, &bytes);
  if (!qk) return fail(env, "R", "native quantizeRef: no reference quantiser for ggml type %lld", (long long)type);
  if (n % (size_t)qk) return fail(env, "R", "native quantizeRef: x has %zu values, not a multiple of the block size %d", n, qk);
  const size_t nb = n / (size_t)qk;
  if (nb > INT32_MAX) return fail(env, "R", "native quantizeRef: x has too many blocks (%zu)", nb);
  if (olen < nb * (size_t)bytes) return fail(env, "R", "native quantizeRef: out has %zu bytes, needs %zu", olen, nb * (size_t)bytes);
  if (overlap(out, nb * (size_t)bytes, x, n * 4)) return fail(env, "R", "native quantizeRef: out overlaps x");
  quant_ref_run((int)type, x, out, (int64_t)nb);
  return number(env, (double)(nb * (size_t)bytes));
}

napi_value js_quantize_ref_types(napi_env env, napi_callback_info info) {
  (void)info;
  int types[32];
  const int n = quant_ref_types(types, 32);
  napi_value arr;
  if (napi_create_array_with_length(env, (size_t)n, &arr) != napi_ok) return NULL;
  for (int i = 0; i < n; i++)
    if (napi_set_element(env, arr, (uint32_t)i, number(env, types[i])) != napi_ok) return NULL;
  return arr;
}
