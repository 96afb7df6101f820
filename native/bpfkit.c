/*
 * bpfkit's native layer: the only code that is not TypeScript. It makes system calls and tells the
 * event loop when a file descriptor is readable; it knows nothing about BPF beyond the syscall
 * numbers. Attribute buffers are laid out by TypeScript; where an attribute holds a pointer to user
 * memory, the caller passes (holder, offset, buffer) triples and this layer writes the buffer's
 * address there just before the call, so no raw address ever reaches JavaScript.
 *
 * Every call returns a non-negative result or -errno; TypeScript turns that into an error object.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_bpf
#error "this architecture has no bpf syscall number"
#endif

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) return throw_last(env, #call);                                          \
  } while (0)

static napi_value throw_last(napi_env env, const char *what) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    char msg[256];
    snprintf(msg, sizeof msg, "bpfkit native: %s (%s)", info && info->error_message ? info->error_message : "error", what);
    napi_throw_error(env, "ERR_BPFKIT_NATIVE", msg);
  }
  return NULL;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

static napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_BPFKIT_NATIVE_ARG", msg);
  return NULL;
}

static bool get_i64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_number) return napi_get_value_int64(env, v, out) == napi_ok;
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok;
  }
  return false;
}

static bool get_u64(napi_env env, napi_value v, uint64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok;
  }
  int64_t s;
  if (!get_i64(env, v, &s)) return false;
  *out = (uint64_t)s;
  return true;
}

/* Data pointer and length of any ArrayBufferView or ArrayBuffer. Asking N-API for the pointer also
 * moves a small on-heap typed array off the V8 heap, so the address stays put during the call. */
static bool get_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length, offset;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &length, data, &ab, &offset) != napi_ok) return false;
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 1;
    }
    *len = length * elem;
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    napi_value ab;
    size_t offset;
    return napi_get_dataview_info(env, v, len, data, &ab, &offset) == napi_ok;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    return napi_get_arraybuffer_info(env, v, data, len) == napi_ok;
  }
  return false;
}

/* refs is a flat array of triples [holder, offset, buffer, ...]: write the address of `buffer` (0 for
 * null) as a u64 at `offset` of `holder`, where a null holder means the attribute buffer itself. A
 * holder other than attr lets an info struct passed by pointer carry pointers of its own. */
static bool patch_pointers(napi_env env, napi_value refs, uint8_t *attr, size_t attr_len) {
  napi_valuetype t;
  if (napi_typeof(env, refs, &t) != napi_ok) return false;
  if (t == napi_undefined || t == napi_null) return true;
  uint32_t n;
  if (napi_get_array_length(env, refs, &n) != napi_ok || (n % 3) != 0) return false;
  for (uint32_t i = 0; i < n; i += 3) {
    napi_value holder_v, off_v, buf_v;
    int64_t off;
    uint8_t *holder = attr;
    size_t holder_len = attr_len;
    if (napi_get_element(env, refs, i, &holder_v) != napi_ok) return false;
    napi_valuetype ht;
    napi_typeof(env, holder_v, &ht);
    if (ht != napi_null && ht != napi_undefined) {
      void *h;
      if (!get_bytes(env, holder_v, &h, &holder_len)) return false;
      holder = h;
    }
    if (napi_get_element(env, refs, i + 1, &off_v) != napi_ok || !get_i64(env, off_v, &off)) return false;
    if (off < 0 || (size_t)off + 8 > holder_len) return false;
    if (napi_get_element(env, refs, i + 2, &buf_v) != napi_ok) return false;
    napi_valuetype bt;
    napi_typeof(env, buf_v, &bt);
    uint64_t addr = 0;
    if (bt != napi_null && bt != napi_undefined) {
      void *data;
      size_t len;
      if (!get_bytes(env, buf_v, &data, &len)) return false;
      addr = (uint64_t)(uintptr_t)data;
    }
    memcpy(holder + off, &addr, 8);
  }
  return true;
}

/* bpf(cmd, attr, refs?) -> result or -errno */
static napi_value Bpf(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return type_error(env, "bpf(cmd, attr, refs?)");
  int64_t cmd;
  void *attr;
  size_t len;
  if (!get_i64(env, argv[0], &cmd)) return type_error(env, "bpf: cmd must be a number");
  if (!get_bytes(env, argv[1], &attr, &len)) return type_error(env, "bpf: attr must be a Uint8Array");
  if (argc > 2 && !patch_pointers(env, argv[2], attr, len)) return type_error(env, "bpf: bad pointer refs");
  long r;
  if (cmd == BPF_PROG_LOAD) {
    /*
     * The verifier gives up with EAGAIN when a signal is pending. V8's CPU profiler (node
     * --cpu-prof) sends this thread SIGPROF every interval, shorter than a large program's
     * verification, so no retry would ever get through: hold SIGPROF back for the call; the
     * profiler's sample is taken right after.
     */
    sigset_t prof, old;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &prof, &old);
    r = syscall(__NR_bpf, (int)cmd, attr, (unsigned int)len);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
  } else {
    r = syscall(__NR_bpf, (int)cmd, attr, (unsigned int)len);
  }
  return make_int(env, r < 0 ? -errno : r);
}

/*
 * The per-element map commands are the hot path of map access, so their arguments are read with
 * the fewest N-API calls: a number is read without asking its type first, and a buffer is asked
 * for as a typed array first (what the library always passes).
 */
static bool get_int_fast(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok || get_i64(env, v, out);
}

/* The address of a typed array (or other buffer), 0 for null or undefined; false for anything else. */
static bool get_ptr_or_null(napi_env env, napi_value v, uint64_t *out) {
  napi_typedarray_type type;
  size_t length, offset;
  napi_value ab;
  void *p;
  if (napi_get_typedarray_info(env, v, &type, &length, &p, &ab, &offset) == napi_ok) {
    *out = (uint64_t)(uintptr_t)p;
    return true;
  }
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_null || t == napi_undefined) {
    *out = 0;
    return true;
  }
  size_t len;
  if (!get_bytes(env, v, &p, &len)) return false;
  *out = (uint64_t)(uintptr_t)p;
  return true;
}

static bool is_elem_cmd(int64_t cmd) {
  switch (cmd) {
    case BPF_MAP_LOOKUP_ELEM: case BPF_MAP_UPDATE_ELEM: case BPF_MAP_DELETE_ELEM:
    case BPF_MAP_GET_NEXT_KEY: case BPF_MAP_LOOKUP_AND_DELETE_ELEM: return true;
    default: return false;
  }
}

/* The attr of a per-element command, as long as libbpf passes it (up to and including flags). */
#define ELEM_ATTR_SIZE (offsetof(union bpf_attr, flags) + sizeof(((union bpf_attr *)0)->flags))

static long elem_call(int cmd, uint32_t fd, uint64_t key, uint64_t value, uint64_t flags) {
  union bpf_attr attr;
  memset(&attr, 0, ELEM_ATTR_SIZE);
  attr.map_fd = fd;
  attr.key = key;
  attr.value = value;
  attr.flags = flags;
  long r = syscall(__NR_bpf, cmd, &attr, (unsigned int)ELEM_ATTR_SIZE);
  return r < 0 ? -errno : r;
}

/*
 * mapElem(cmd, fd, key, value, flags) -> result or -errno, for the per-element map commands
 * (LOOKUP, UPDATE, DELETE, GET_NEXT_KEY, LOOKUP_AND_DELETE): the attr is built here from the uapi
 * union, with no pointer list to walk. key and value are typed arrays or null; flags a number.
 */
static napi_value MapElem(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return type_error(env, "mapElem(cmd, fd, key, value, flags)");
  int64_t cmd, fd, flags;
  if (!get_int_fast(env, argv[0], &cmd) || !get_int_fast(env, argv[1], &fd) || !get_int_fast(env, argv[4], &flags))
    return type_error(env, "mapElem: cmd, fd and flags must be numbers");
  if (!is_elem_cmd(cmd)) return type_error(env, "mapElem: not a per-element map command");
  uint64_t key, value;
  if (!get_ptr_or_null(env, argv[2], &key) || !get_ptr_or_null(env, argv[3], &value))
    return type_error(env, "mapElem: key and value must be typed arrays or null");
  return make_int(env, elem_call((int)cmd, (uint32_t)fd, key, value, (uint64_t)flags));
}

/*
 * mapNextLookup(fd, prev, next, value) -> 0, or -errno of GET_NEXT_KEY, or -(4096 + errno) of the
 * LOOKUP: one step of a map walk (the key after `prev`, null for the first, into `next`, then its
 * value into `value`) in one call from JavaScript. Errno values stay below 4096, so the caller
 * tells which of the two commands failed.
 */
static napi_value MapNextLookup(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return type_error(env, "mapNextLookup(fd, prev, next, value)");
  int64_t fd;
  uint64_t prev, next, value;
  if (!get_int_fast(env, argv[0], &fd)) return type_error(env, "mapNextLookup: fd must be a number");
  if (!get_ptr_or_null(env, argv[1], &prev) || !get_ptr_or_null(env, argv[2], &next) || !get_ptr_or_null(env, argv[3], &value) ||
      next == 0 || value == 0)
    return type_error(env, "mapNextLookup: prev must be a typed array or null, next and value typed arrays");
  long r = elem_call(BPF_MAP_GET_NEXT_KEY, (uint32_t)fd, prev, next, 0);
  if (r < 0) return make_int(env, r);
  r = elem_call(BPF_MAP_LOOKUP_ELEM, (uint32_t)fd, next, value, 0);
  return make_int(env, r < 0 ? r - 4096 : 0);
}

/*
 * A map's own key and value buffers bound once: mapBind(fd, key, value) -> handle, then
 * mapOp(handle, cmd, flags) -> result or -errno for the per-element commands, with no buffers to
 * look up per call. The handle holds references to both buffers (their memory does not move once
 * N-API has handed out its address), released when the handle is collected.
 */
typedef struct {
  uint32_t fd;
  uint64_t key, value;
  napi_ref key_ref, value_ref;
} elem_binding_t;

static void elem_binding_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  elem_binding_t *b = data;
  if (b->key_ref) napi_delete_reference(env, b->key_ref);
  if (b->value_ref) napi_delete_reference(env, b->value_ref);
  free(b);
}

static napi_value MapBind(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd;
  uint64_t key, value;
  if (argc < 3 || !get_int_fast(env, argv[0], &fd) || !get_ptr_or_null(env, argv[1], &key) || !get_ptr_or_null(env, argv[2], &value))
    return type_error(env, "mapBind(fd, key, value): fd a number, key and value typed arrays or null");
  elem_binding_t *b = calloc(1, sizeof *b);
  if (!b) return type_error(env, "out of memory");
  b->fd = (uint32_t)fd;
  b->key = key;
  b->value = value;
  if ((key && napi_create_reference(env, argv[1], 1, &b->key_ref) != napi_ok) ||
      (value && napi_create_reference(env, argv[2], 1, &b->value_ref) != napi_ok)) {
    elem_binding_finalize(env, b, NULL);
    return throw_last(env, "napi_create_reference");
  }
  napi_value out;
  if (napi_create_external(env, b, elem_binding_finalize, NULL, &out) != napi_ok) {
    elem_binding_finalize(env, b, NULL);
    return throw_last(env, "napi_create_external");
  }
  return out;
}

static napi_value MapOp(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  elem_binding_t *b = NULL;
  int64_t cmd, flags;
  if (argc < 3 || napi_get_value_external(env, argv[0], (void **)&b) != napi_ok || !b)
    return type_error(env, "mapOp(binding, cmd, flags): binding must come from mapBind()");
  if (!get_int_fast(env, argv[1], &cmd) || !get_int_fast(env, argv[2], &flags)) return type_error(env, "mapOp: cmd and flags must be numbers");
  if (!is_elem_cmd(cmd)) return type_error(env, "mapOp: not a per-element map command");
  /* DELETE's attr ends at the key: the kernel refuses any non-zero byte after it (CHECK_ATTR). */
  return make_int(env, elem_call((int)cmd, b->fd, b->key, cmd == BPF_MAP_DELETE_ELEM ? 0 : b->value, (uint64_t)flags));
}

/* perfEventOpen(attr, refs, pid, cpu, groupFd, flags) -> fd or -errno */
static napi_value PerfEventOpen(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) return type_error(env, "perfEventOpen(attr, refs, pid, cpu, groupFd, flags)");
  void *attr;
  size_t len;
  int64_t pid, cpu, group, flags;
  if (!get_bytes(env, argv[0], &attr, &len)) return type_error(env, "perfEventOpen: attr must be a Uint8Array");
  if (!patch_pointers(env, argv[1], attr, len)) return type_error(env, "perfEventOpen: bad pointer refs");
  if (!get_i64(env, argv[2], &pid) || !get_i64(env, argv[3], &cpu) || !get_i64(env, argv[4], &group) ||
      !get_i64(env, argv[5], &flags))
    return type_error(env, "perfEventOpen: pid, cpu, groupFd and flags must be numbers");
  long r = syscall(__NR_perf_event_open, attr, (pid_t)pid, (int)cpu, (int)group, (unsigned long)flags);
  return make_int(env, r < 0 ? -errno : r);
}

/* ioctl(fd, request, arg) where arg is an integer or a buffer passed by address. */
static napi_value Ioctl(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd;
  uint64_t req;
  if (argc < 2 || !get_i64(env, argv[0], &fd) || !get_u64(env, argv[1], &req))
    return type_error(env, "ioctl(fd, request, arg?)");
  unsigned long arg = 0;
  if (argc > 2) {
    void *data;
    size_t len;
    int64_t n;
    if (get_i64(env, argv[2], &n)) arg = (unsigned long)n;
    else if (get_bytes(env, argv[2], &data, &len)) arg = (unsigned long)(uintptr_t)data;
    else return type_error(env, "ioctl: arg must be a number or a buffer");
  }
  int r = ioctl((int)fd, (unsigned long)req, arg);
  return make_int(env, r < 0 ? -errno : r);
}

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd;
  if (argc < 1 || !get_i64(env, argv[0], &fd)) return type_error(env, "close(fd)");
  int r = close((int)fd);
  return make_int(env, r < 0 ? -errno : r);
}

/* A mapping stays valid until munmap() or until its ArrayBuffer is collected. */
typedef struct {
  void *addr;
  size_t len;
  int mapped;
} mapping_t;

static void mapping_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  mapping_t *m = hint;
  if (m->mapped) munmap(m->addr, m->len);
  free(m);
}

/* mmap(fd, length, prot, flags, offset) -> ArrayBuffer, or -errno */
static napi_value Mmap(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd, length, prot, flags, offset;
  if (argc < 5 || !get_i64(env, argv[0], &fd) || !get_i64(env, argv[1], &length) || !get_i64(env, argv[2], &prot) ||
      !get_i64(env, argv[3], &flags) || !get_i64(env, argv[4], &offset) || length <= 0)
    return type_error(env, "mmap(fd, length, prot, flags, offset)");
  void *addr = mmap(NULL, (size_t)length, (int)prot, (int)flags, (int)fd, (off_t)offset);
  if (addr == MAP_FAILED) return make_int(env, -errno);
  mapping_t *m = malloc(sizeof *m);
  if (!m) {
    munmap(addr, (size_t)length);
    return make_int(env, -ENOMEM);
  }
  m->addr = addr;
  m->len = (size_t)length;
  m->mapped = 1;
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(env, addr, (size_t)length, mapping_finalize, m, &ab);
  if (st != napi_ok) {
    munmap(addr, (size_t)length);
    free(m);
    return throw_last(env, "napi_create_external_arraybuffer");
  }
  CHECK(napi_wrap(env, ab, m, NULL, NULL, NULL));
  return ab;
}

/* munmap(arrayBuffer): unmaps now and detaches the buffer so JavaScript can no longer touch it. */
static napi_value Munmap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return type_error(env, "munmap(arrayBuffer)");
  mapping_t *m = NULL;
  if (napi_unwrap(env, argv[0], (void **)&m) != napi_ok || !m) return type_error(env, "munmap: not a mapping from mmap()");
  if (!m->mapped) return make_int(env, 0);
  CHECK(napi_detach_arraybuffer(env, argv[0]));
  int r = munmap(m->addr, m->len);
  m->mapped = 0;
  return make_int(env, r < 0 ? -errno : 0);
}

static napi_value Socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t d, t, p;
  if (argc < 3 || !get_i64(env, argv[0], &d) || !get_i64(env, argv[1], &t) || !get_i64(env, argv[2], &p))
    return type_error(env, "socket(domain, type, protocol)");
  int r = socket((int)d, (int)t | SOCK_CLOEXEC, (int)p);
  return make_int(env, r < 0 ? -errno : r);
}

/* bind(fd, sockaddr) and connect(fd, sockaddr), sockaddr as raw bytes. */
static napi_value addr_call(napi_env env, napi_callback_info info, int is_bind) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd;
  void *addr;
  size_t len;
  if (argc < 2 || !get_i64(env, argv[0], &fd) || !get_bytes(env, argv[1], &addr, &len))
    return type_error(env, "bind/connect(fd, sockaddr)");
  int r = is_bind ? bind((int)fd, addr, (socklen_t)len) : connect((int)fd, addr, (socklen_t)len);
  return make_int(env, r < 0 ? -errno : r);
}
static napi_value Bind(napi_env env, napi_callback_info info) { return addr_call(env, info, 1); }
static napi_value Connect(napi_env env, napi_callback_info info) { return addr_call(env, info, 0); }

/* sendto(fd, buf, flags, sockaddr?) -> bytes sent or -errno */
static napi_value Sendto(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd, flags;
  void *buf, *addr = NULL;
  size_t len, alen = 0;
  if (argc < 3 || !get_i64(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &len) || !get_i64(env, argv[2], &flags))
    return type_error(env, "sendto(fd, buf, flags, sockaddr?)");
  if (argc > 3) {
    napi_valuetype t;
    napi_typeof(env, argv[3], &t);
    if (t != napi_undefined && t != napi_null && !get_bytes(env, argv[3], &addr, &alen))
      return type_error(env, "sendto: sockaddr must be a buffer");
  }
  ssize_t r = sendto((int)fd, buf, len, (int)flags, addr, (socklen_t)alen);
  return make_int(env, r < 0 ? -errno : r);
}

/* recv(fd, buf, flags) -> bytes received or -errno */
static napi_value Recv(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd, flags;
  void *buf;
  size_t len;
  if (argc < 3 || !get_i64(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &len) || !get_i64(env, argv[2], &flags))
    return type_error(env, "recv(fd, buf, flags)");
  ssize_t r = recv((int)fd, buf, len, (int)flags);
  return make_int(env, r < 0 ? -errno : r);
}

/* setsockopt(fd, level, name, value bytes) */
static napi_value Setsockopt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd, level, name;
  void *val;
  size_t len;
  if (argc < 4 || !get_i64(env, argv[0], &fd) || !get_i64(env, argv[1], &level) || !get_i64(env, argv[2], &name) ||
      !get_bytes(env, argv[3], &val, &len))
    return type_error(env, "setsockopt(fd, level, name, value)");
  int r = setsockopt((int)fd, (int)level, (int)name, val, (socklen_t)len);
  return make_int(env, r < 0 ? -errno : r);
}

/* getsockopt(fd, level, name, out bytes) -> length written or -errno */
static napi_value Getsockopt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd, level, name;
  void *val;
  size_t len;
  if (argc < 4 || !get_i64(env, argv[0], &fd) || !get_i64(env, argv[1], &level) || !get_i64(env, argv[2], &name) ||
      !get_bytes(env, argv[3], &val, &len))
    return type_error(env, "getsockopt(fd, level, name, out)");
  socklen_t l = (socklen_t)len;
  int r = getsockopt((int)fd, (int)level, (int)name, val, &l);
  return make_int(env, r < 0 ? -errno : (int64_t)l);
}

/* getrlimit(resource) -> [cur, max] as bigints (RLIM_INFINITY is 2^64-1) */
static napi_value Getrlimit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t res;
  if (argc < 1 || !get_i64(env, argv[0], &res)) return type_error(env, "getrlimit(resource)");
  struct rlimit rl;
  if (getrlimit((int)res, &rl) < 0) return make_int(env, -errno);
  napi_value arr, a, b;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  CHECK(napi_create_bigint_uint64(env, (uint64_t)rl.rlim_cur, &a));
  CHECK(napi_create_bigint_uint64(env, (uint64_t)rl.rlim_max, &b));
  CHECK(napi_set_element(env, arr, 0, a));
  CHECK(napi_set_element(env, arr, 1, b));
  return arr;
}

/* setrlimit(resource, cur, max) -> 0 or -errno */
static napi_value Setrlimit(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t res;
  uint64_t cur, max;
  if (argc < 3 || !get_i64(env, argv[0], &res) || !get_u64(env, argv[1], &cur) || !get_u64(env, argv[2], &max))
    return type_error(env, "setrlimit(resource, cur, max)");
  struct rlimit rl = {.rlim_cur = (rlim_t)cur, .rlim_max = (rlim_t)max};
  int r = setrlimit((int)res, &rl);
  return make_int(env, r < 0 ? -errno : 0);
}

/* Readiness of an fd, delivered on the event loop of the calling environment (so worker threads get
 * their own), through uv_poll: no thread is blocked per fd. */
typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_ref self;
  int closing;
} poller_t;

static void poller_closed(uv_handle_t *h) {
  poller_t *p = h->data;
  free(p);
}

static void poller_cb(uv_poll_t *h, int status, int events) {
  poller_t *p = h->data;
  if (p->closing) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, args[2];
  if (napi_get_reference_value(env, p->callback, &cb) == napi_ok && cb != NULL) {
    napi_get_global(env, &recv); /* napi_make_callback wants an object receiver */
    napi_create_int32(env, status, &args[0]);
    napi_create_int32(env, events, &args[1]);
    napi_value result;
    napi_async_context ctx = NULL;
    napi_value resource_name;
    napi_create_string_utf8(env, "bpfkit:poll", NAPI_AUTO_LENGTH, &resource_name);
    if (napi_async_init(env, NULL, resource_name, &ctx) == napi_ok) {
      napi_make_callback(env, ctx, recv, cb, 2, args, &result);
      napi_async_destroy(env, ctx);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void poller_stop_and_close(poller_t *p) {
  if (p->closing) return;
  p->closing = 1;
  uv_poll_stop(&p->handle);
  napi_delete_reference(p->env, p->callback);
  p->callback = NULL;
  uv_close((uv_handle_t *)&p->handle, poller_closed);
}

static void poller_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  poller_t *p = data;
  poller_stop_and_close(p);
}

static poller_t *this_poller(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  poller_t *p = NULL;
  if (napi_unwrap(env, self, (void **)&p) != napi_ok) return NULL;
  return p;
}

/* poller.start(events): UV_READABLE=1, UV_WRITABLE=2, UV_PRIORITIZED=8 */
static napi_value PollerStart(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  poller_t *p = this_poller(env, info, &argc, argv);
  if (!p || p->closing) return type_error(env, "poller is closed");
  int64_t events = UV_READABLE;
  if (argc > 0) get_i64(env, argv[0], &events);
  int r = uv_poll_start(&p->handle, (int)events, poller_cb);
  return make_int(env, r);
}

static napi_value PollerStop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  poller_t *p = this_poller(env, info, &argc, NULL);
  if (!p || p->closing) return make_int(env, 0);
  return make_int(env, uv_poll_stop(&p->handle));
}

static napi_value PollerRef(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  poller_t *p = this_poller(env, info, &argc, argv);
  if (!p || p->closing) return make_int(env, 0);
  bool on = true;
  if (argc > 0) napi_get_value_bool(env, argv[0], &on);
  if (on) uv_ref((uv_handle_t *)&p->handle);
  else uv_unref((uv_handle_t *)&p->handle);
  return make_int(env, 0);
}

/* Closing removes the wrap first, so the finalizer cannot later touch the freed poller. */
static napi_value PollerClose(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self;
  if (napi_get_cb_info(env, info, &argc, NULL, &self, NULL) != napi_ok) return NULL;
  poller_t *p = NULL;
  if (napi_remove_wrap(env, self, (void **)&p) == napi_ok && p) poller_stop_and_close(p);
  return make_int(env, 0);
}

/* new Poller(fd, callback(status, events)) */
static napi_value PollerNew(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  int64_t fd;
  napi_valuetype t = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &t);
  if (argc < 2 || !get_i64(env, argv[0], &fd) || t != napi_function) return type_error(env, "new Poller(fd, callback)");
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  poller_t *p = calloc(1, sizeof *p);
  if (!p) return type_error(env, "out of memory");
  p->env = env;
  int r = uv_poll_init(loop, &p->handle, (int)fd);
  if (r != 0) {
    free(p);
    char msg[128];
    snprintf(msg, sizeof msg, "uv_poll_init(fd %d) failed: %s", (int)fd, uv_strerror(r));
    napi_throw_error(env, "ERR_BPFKIT_POLL", msg);
    return NULL;
  }
  p->handle.data = p;
  CHECK(napi_create_reference(env, argv[1], 1, &p->callback));
  CHECK(napi_wrap(env, self, p, poller_finalize, NULL, NULL));
  return self;
}

static napi_value Strerror(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t e;
  if (argc < 1 || !get_i64(env, argv[0], &e)) return type_error(env, "strerror(errno)");
  napi_value out;
  CHECK(napi_create_string_utf8(env, strerror((int)(e < 0 ? -e : e)), NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"bpf", NULL, Bpf, NULL, NULL, NULL, napi_default, NULL},
      {"mapElem", NULL, MapElem, NULL, NULL, NULL, napi_default, NULL},
      {"mapNextLookup", NULL, MapNextLookup, NULL, NULL, NULL, napi_default, NULL},
      {"mapBind", NULL, MapBind, NULL, NULL, NULL, napi_default, NULL},
      {"mapOp", NULL, MapOp, NULL, NULL, NULL, napi_default, NULL},
      {"perfEventOpen", NULL, PerfEventOpen, NULL, NULL, NULL, napi_default, NULL},
      {"ioctl", NULL, Ioctl, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
      {"mmap", NULL, Mmap, NULL, NULL, NULL, napi_default, NULL},
      {"munmap", NULL, Munmap, NULL, NULL, NULL, napi_default, NULL},
      {"socket", NULL, Socket, NULL, NULL, NULL, napi_default, NULL},
      {"bind", NULL, Bind, NULL, NULL, NULL, napi_default, NULL},
      {"connect", NULL, Connect, NULL, NULL, NULL, napi_default, NULL},
      {"sendto", NULL, Sendto, NULL, NULL, NULL, napi_default, NULL},
      {"recv", NULL, Recv, NULL, NULL, NULL, napi_default, NULL},
      {"setsockopt", NULL, Setsockopt, NULL, NULL, NULL, napi_default, NULL},
      {"getsockopt", NULL, Getsockopt, NULL, NULL, NULL, napi_default, NULL},
      {"getrlimit", NULL, Getrlimit, NULL, NULL, NULL, napi_default, NULL},
      {"setrlimit", NULL, Setrlimit, NULL, NULL, NULL, napi_default, NULL},
      {"strerror", NULL, Strerror, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) != napi_ok) return NULL;

  napi_property_descriptor poller_methods[] = {
      {"start", NULL, PollerStart, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, PollerStop, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, PollerRef, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, PollerClose, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value poller;
  if (napi_define_class(env, "Poller", NAPI_AUTO_LENGTH, PollerNew, NULL, 4, poller_methods, &poller) != napi_ok)
    return NULL;
  napi_set_named_property(env, exports, "Poller", poller);

  napi_value consts;
  napi_create_object(env, &consts);
  struct { const char *name; int64_t v; } cs[] = {
      {"PROT_READ", PROT_READ}, {"PROT_WRITE", PROT_WRITE}, {"MAP_SHARED", MAP_SHARED},
      {"PAGE_SIZE", sysconf(_SC_PAGESIZE)}, {"UV_READABLE", UV_READABLE}, {"UV_WRITABLE", UV_WRITABLE},
      {"UV_PRIORITIZED", UV_PRIORITIZED}, {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"NR_CPUS_ONLINE", sysconf(_SC_NPROCESSORS_ONLN)},
  };
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) napi_set_named_property(env, consts, cs[i].name, make_int(env, cs[i].v));
  napi_set_named_property(env, exports, "constants", consts);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
