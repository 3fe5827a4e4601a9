// Argument checking and value helpers shared by the Node-API bindings (addon*.c): each throws a TypeError or
// RangeError naming the argument and returns false / NULL, so a binding just returns NULL on failure.
#pragma once
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_ARGS 16

/** Throw (code "T": TypeError, "R": RangeError, else Error) unless an exception is pending; returns NULL. */
napi_value fail(napi_env env, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Rejects `deferred` with an Error of message `msg` (an async work's complete callback). */
void reject_with(napi_env env, napi_deferred deferred, const char *msg);
/** Up to MAX_ARGS arguments into argv (missing ones undefined); returns how many were passed. */
size_t args(napi_env env, napi_callback_info info, napi_value *argv);
bool int_arg(napi_env env, napi_value v, const char *name, int64_t lo, int64_t hi, int64_t *out);
bool num_arg(napi_env env, napi_value v, const char *name, double *out);
bool bytes_arg(napi_env env, napi_value v, const char *name, void **data, size_t *len);
bool typed_arg(napi_env env, napi_value v, const char *name, napi_typedarray_type want, const char *what, void **data, size_t *n);
bool f32_arg(napi_env env, napi_value v, const char *name, float **data, size_t *n);
bool i32_arg(napi_env env, napi_value v, const char *name, int32_t **data, size_t *n);
/** RangeError "native <op>: <name> has <have> values, needs <want>" unless have >= want. */
bool need_len(napi_env env, const char *op, const char *name, size_t have, size_t want);
bool overlap(const void *a, size_t an, const void *b, size_t bn);
napi_value undefined(napi_env env);
napi_value number(napi_env env, double d);
napi_value string_array(napi_env env, const char **names, int n);

// Bindings of addon_matmul.c, addon_ops.c and addon_crc.c, registered by addon.c.
napi_value js_matmul(napi_env env, napi_callback_info info);
napi_value js_matmul_set(napi_env env, napi_callback_info info);
napi_value js_repack_r8(napi_env env, napi_callback_info info);
napi_value js_expert_ffn(napi_env env, napi_callback_info info);
napi_value js_moe_ffn(napi_env env, napi_callback_info info);
napi_value js_moe_ffn_async(napi_env env, napi_callback_info info);
napi_value js_moe_ffn_begin(napi_env env, napi_callback_info info);
napi_value js_moe_ffn_join(napi_env env, napi_callback_info info);
napi_value js_quantize_q8_0(napi_env env, napi_callback_info info);
napi_value js_quantize_q8_K(napi_env env, napi_callback_info info);
napi_value js_rms_norm(napi_env env, napi_callback_info info);
napi_value js_rope(napi_env env, napi_callback_info info);
napi_value js_add(napi_env env, napi_callback_info info);
napi_value js_swiglu(napi_env env, napi_callback_info info);
napi_value js_attention(napi_env env, napi_callback_info info);
napi_value js_scatter_add(napi_env env, napi_callback_info info);
napi_value js_gated_delta_net(napi_env env, napi_callback_info info);
napi_value js_attention_ext(napi_env env, napi_callback_info info);
napi_value js_attention_masked(napi_env env, napi_callback_info info);
napi_value js_swiglu_oai(napi_env env, napi_callback_info info);
napi_value js_add_rows(napi_env env, napi_callback_info info);
napi_value js_matmul_heads(napi_env env, napi_callback_info info);
napi_value js_conv_silu(napi_env env, napi_callback_info info);
napi_value js_l2_norm(napi_env env, napi_callback_info info);
napi_value js_rms_norm_gated(napi_env env, napi_callback_info info);
napi_value js_sigmoid_mul(napi_env env, napi_callback_info info);
napi_value js_delta_gates(napi_env env, napi_callback_info info);
napi_value js_copy_rows(napi_env env, napi_callback_info info);
napi_value js_rope_table(napi_env env, napi_callback_info info);
napi_value js_crc32c(napi_env env, napi_callback_info info);
napi_value js_crc32c_async(napi_env env, napi_callback_info info);
napi_value js_crc32c_impl(napi_env env, napi_callback_info info);
napi_value js_hold_cuda_contexts(napi_env env, napi_callback_info info);
napi_value js_pread_crc32c(napi_env env, napi_callback_info info);
// addon_quant.c
napi_value js_quantize_ref(napi_env env, napi_callback_info info);
napi_value js_quantize_ref_types(napi_env env, napi_callback_info info);
