// Node-API bindings of crc32c.c: a synchronous call for small buffers and tests, and one that checksums on
// libuv's thread pool and resolves a promise, so a record's check never holds up the JS thread.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "crc32c.h"
#include "napi_args.h"

// crc32c(buf, crc = 0): CRC-32C of buf's bytes, continuing from crc.
napi_value js_crc32c(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  const size_t argc = args(env, info, a);
  void *p;
  size_t n;
  int64_t crc = 0;
  if (!bytes_arg(env, a[0], "buf", &p, &n) || (argc > 1 && !int_arg(env, a[1], "crc", 0, UINT32_MAX, &crc))) return NULL;
  napi_value v;
  napi_create_uint32(env, crc32c((uint32_t)crc, p, n), &v);
  return v;
}

napi_value js_crc32c_impl(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value s;
  napi_create_string_utf8(env, crc32c_impl(), NAPI_AUTO_LENGTH, &s);
  return s;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buf; // keeps the buffer alive (and its memory in place) until the work completes
  const void *p;
  size_t n;
  uint32_t crc;
} crc_job;

static void crc_execute(napi_env env, void *data) {
  (void)env;
  crc_job *j = data;
  j->crc = crc32c(0, j->p, j->n);
}

static void crc_complete(napi_env env, napi_status status, void *data) {
  crc_job *j = data;
  napi_value v;
  if (status == napi_ok) {
    napi_create_uint32(env, j->crc, &v);
    napi_resolve_deferred(env, j->deferred, v);
  } else reject_with(env, j->deferred, "native crc32cAsync: the work was cancelled");
  napi_delete_reference(env, j->buf);
  napi_delete_async_work(env, j->work);
  free(j);
}

/** Queue async work for `data` holding a reference to `buf` (kept alive and in place until `complete`); its promise. */
static napi_value queue(napi_env env, const char *what, napi_value buf, napi_ref *ref, napi_deferred *deferred, napi_async_work *work,
                        napi_async_execute_callback execute, napi_async_complete_callback complete, void *data) {
  napi_value promise, name;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, buf, 1, ref) != napi_ok) {
    free(data);
    return fail(env, "E", "%s: cannot reference the buffer", what);
  }
  if (napi_create_async_work(env, NULL, name, execute, complete, data, work) != napi_ok) {
    napi_delete_reference(env, *ref);
    free(data);
    return fail(env, "E", "%s: cannot create the work", what);
  }
  if (napi_create_promise(env, deferred, &promise) != napi_ok || napi_queue_async_work(env, *work) != napi_ok) {
    napi_delete_async_work(env, *work);
    napi_delete_reference(env, *ref);
    free(data);
    return fail(env, "E", "%s: cannot queue the work", what);
  }
  return promise;
}

// crc32cAsync(buf): a promise of buf's CRC-32C, computed on a libuv pool thread. The caller must not write to
// buf until it settles (the bytes are read in place).
napi_value js_crc32c_async(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  void *p;
  size_t n;
  if (!bytes_arg(env, a[0], "buf", &p, &n)) return NULL;
  crc_job *j = calloc(1, sizeof *j);
  if (!j) return fail(env, "E", "native crc32cAsync: out of memory");
  j->p = p;
  j->n = n;
  return queue(env, "moestream.crc32cAsync", a[0], &j->buf, &j->deferred, &j->work, crc_execute, crc_complete, j);
}

// A positioned read that checksums what it read on the same pool thread: the record's check costs no second trip
// through the pool and the JS thread (measured cheaper per record than read, then crc32cAsync).
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buf;
  int fd;
  void *p;
  size_t n, got;
  int64_t pos;
  int err; // errno of a failed pread, 0 if none
  uint32_t crc;
} read_job;

static void read_execute(napi_env env, void *data) {
  (void)env;
  read_job *j = data;
  while (j->got < j->n) {
    const ssize_t r = pread(j->fd, (char *)j->p + j->got, j->n - j->got, (off_t)(j->pos + (int64_t)j->got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      j->err = errno;
      return;
    }
    if (r == 0) break; // end of file: a short read, the caller decides
    j->got += (size_t)r;
  }
  j->crc = crc32c(0, j->p, j->got);
}

static void set_prop(napi_env env, napi_value obj, const char *name, napi_value v) { napi_set_named_property(env, obj, name, v); }

static void read_complete(napi_env env, napi_status status, void *data) {
  read_job *j = data;
  napi_value v, x;
  if (status == napi_ok && !j->err) {
    napi_create_object(env, &v);
    napi_create_double(env, (double)j->got, &x);
    set_prop(env, v, "bytesRead", x);
    napi_create_uint32(env, j->crc, &x);
    set_prop(env, v, "crc", x);
    napi_resolve_deferred(env, j->deferred, v);
  } else {
    // An Error shaped like Node's fs errors (code, errno, syscall), so callers treat both alike (EINVAL: O_DIRECT refused).
    const int e = status == napi_ok ? j->err : ECANCELED;
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %s, pread", uv_err_name(-e), uv_strerror(-e));
    napi_value code, m;
    napi_create_string_utf8(env, uv_err_name(-e), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
    napi_create_error(env, code, m, &v);
    napi_create_int32(env, -e, &x);
    set_prop(env, v, "errno", x);
    napi_create_string_utf8(env, "pread", NAPI_AUTO_LENGTH, &x);
    set_prop(env, v, "syscall", x);
    napi_reject_deferred(env, j->deferred, v);
  }
  napi_delete_reference(env, j->buf);
  napi_delete_async_work(env, j->work);
  free(j);
}

// preadCrc32c(fd, buf, position): a promise of { bytesRead, crc }: buf filled from fd at position (short only at
// end of file) and the CRC-32C of the bytes read. The caller keeps fd open and buf untouched until it settles.
napi_value js_pread_crc32c(napi_env env, napi_callback_info info) {
  napi_value a[MAX_ARGS];
  args(env, info, a);
  int64_t fd, pos;
  void *p;
  size_t n;
  if (!int_arg(env, a[0], "fd", 0, INT32_MAX, &fd) || !bytes_arg(env, a[1], "buf", &p, &n) ||
      !int_arg(env, a[2], "position", 0, (int64_t)1 << 53, &pos))
    return NULL;
  read_job *j = calloc(1, sizeof *j);
  if (!j) return fail(env, "E", "native preadCrc32c: out of memory");
  j->fd = (int)fd, j->p = p, j->n = n, j->pos = pos;
  return queue(env, "moestream.preadCrc32c", a[1], &j->buf, &j->deferred, &j->work, read_execute, read_complete, j);
}
