// Argument checking and value helpers for the Node-API bindings (see napi_args.h).
#include "napi_args.h"

#include <stdarg.h>
#include <stdio.h>

napi_value fail(napi_env env, const char *code, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return NULL;
  if (code[0] == 'T') napi_throw_type_error(env, NULL, msg);
  else if (code[0] == 'R') napi_throw_range_error(env, NULL, msg);
  else napi_throw_error(env, NULL, msg);
  return NULL;
}

void reject_with(napi_env env, napi_deferred deferred, const char *msg) {
  napi_value m, e;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_reject_deferred(env, deferred, e);
}

size_t args(napi_env env, napi_callback_info info, napi_value *argv) {
  size_t argc = MAX_ARGS;
  napi_value undef;
  napi_get_undefined(env, &undef);
  for (int i = 0; i < MAX_ARGS; i++) argv[i] = undef;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return argc;
}

/** An integer argument in [lo, hi]; throws a RangeError naming it otherwise. */
bool int_arg(napi_env env, napi_value v, const char *name, int64_t lo, int64_t hi, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != (double)(int64_t)d || d < (double)lo || d > (double)hi) {
    fail(env, "R", "%s must be an integer in [%lld, %lld]", name, (long long)lo, (long long)hi);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

size_t elem_size(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array: return 1;
    case napi_int16_array:
    case napi_uint16_array: return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: return 4;
    default: return 8;
  }
}

/** The bytes of a TypedArray, DataView or ArrayBuffer, in place. */
bool bytes_arg(napi_env env, napi_value v, const char *name, void **data, size_t *len) {
  bool is = false;
  napi_value ab;
  size_t off, n;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type t;
    if (napi_get_typedarray_info(env, v, &t, &n, data, &ab, &off) != napi_ok) goto bad;
    *len = n * elem_size(t);
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    if (napi_get_dataview_info(env, v, len, data, &ab, &off) != napi_ok) goto bad;
    return true;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    if (napi_get_arraybuffer_info(env, v, data, len) != napi_ok) goto bad;
    return true;
  }
bad:
  fail(env, "T", "%s must be a TypedArray, DataView or ArrayBuffer", name);
  return false;
}

/** A TypedArray argument of one element type (`what` names it in the error), in place; n is its length in elements. */
bool typed_arg(napi_env env, napi_value v, const char *name, napi_typedarray_type want, const char *what, void **data, size_t *n) {
  bool is = false;
  napi_typedarray_type t;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is || napi_get_typedarray_info(env, v, &t, n, data, &ab, &off) != napi_ok || t != want) {
    fail(env, "T", "%s must be %s", name, what);
    return false;
  }
  return true;
}

/** A Float32Array argument, in place; n is its length in floats. */
bool f32_arg(napi_env env, napi_value v, const char *name, float **data, size_t *n) {
  return typed_arg(env, v, name, napi_float32_array, "a Float32Array", (void **)data, n);
}

bool overlap(const void *a, size_t an, const void *b, size_t bn) {
  const char *p = a, *q = b;
  return an && bn && p < q + bn && q < p + an;
}

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

napi_value string_array(napi_env env, const char **names, int n) {
  napi_value arr, s;
  napi_create_array_with_length(env, (size_t)n, &arr);
  for (int i = 0; i < n; i++) {
    napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, (uint32_t)i, s);
  }
  return arr;
}

/** An Int32Array argument, in place. */
bool i32_arg(napi_env env, napi_value v, const char *name, int32_t **data, size_t *n) {
  return typed_arg(env, v, name, napi_int32_array, "an Int32Array", (void **)data, n);
}

bool num_arg(napi_env env, napi_value v, const char *name, double *out) {
  if (napi_get_value_double(env, v, out) != napi_ok) {
    fail(env, "T", "%s must be a number", name);
    return false;
  }
  return true;
}

bool need_len(napi_env env, const char *op, const char *name, size_t have, size_t want) {
  if (have >= want) return true;
  fail(env, "R", "native %s: %s has %zu values, needs %zu", op, name, have, want);
  return false;
}
