// An LD_PRELOAD allocation counter: interposes the C allocator (malloc,
// calloc, realloc, free, posix_memalign, aligned_alloc, memalign, valloc,
// pvalloc) and, at exit, writes how many allocating calls the process made to
// the file named by TERN_ALLOC_COUNT_FILE. C++ operator new/delete in
// libstdc++ reach malloc/free through the dynamic linker, so they are counted
// too (the test checks that a std::vector-using tool shows nonzero counts).
//
// tests/model/external_alloc_test.cc runs the real tern-run and tern-chat
// binaries under it: the runtime promises no heap after init, so generating 16
// or 512 tokens, or a 1- or 5-turn chat, must make the same number of calls.
//
// The counter must not allocate itself: counters are plain atomics, the report
// is formatted into a stack buffer and written with open/write. dlsym() may
// call calloc before the real allocator is known; those early requests are
// served from a small static buffer and never freed.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void* (*malloc_fn)(size_t);
typedef void* (*calloc_fn)(size_t, size_t);
typedef void* (*realloc_fn)(void*, size_t);
typedef void (*free_fn)(void*);
typedef int (*posix_memalign_fn)(void**, size_t, size_t);
typedef void* (*aligned_alloc_fn)(size_t, size_t);
typedef void* (*valloc_fn)(size_t);

static malloc_fn real_malloc;
static calloc_fn real_calloc;
static realloc_fn real_realloc;
static free_fn real_free;
static posix_memalign_fn real_posix_memalign;
static aligned_alloc_fn real_aligned_alloc;
static aligned_alloc_fn real_memalign;
static valloc_fn real_valloc;
static valloc_fn real_pvalloc;

static unsigned long long n_alloc;  // malloc/calloc/realloc/aligned variants
static unsigned long long n_free;   // free of a non-null pointer
static unsigned long long n_bytes;  // bytes requested
static int resolving;

// Bootstrap: dlsym's own allocations before the real functions are known.
static _Alignas(64) unsigned char boot_buf[16384];
static size_t boot_used;

static void* boot_alloc(size_t n) {
  const size_t start = (boot_used + 63) & ~(size_t)63;
  if (start + n > sizeof(boot_buf)) return NULL;
  boot_used = start + n;
  return boot_buf + start;
}
static int is_boot(const void* p) {
  return (const unsigned char*)p >= boot_buf && (const unsigned char*)p < boot_buf + sizeof(boot_buf);
}

static void resolve(void) {
  if (real_malloc || resolving) return;
  resolving = 1;
  real_calloc = (calloc_fn)dlsym(RTLD_NEXT, "calloc");
  real_realloc = (realloc_fn)dlsym(RTLD_NEXT, "realloc");
  real_free = (free_fn)dlsym(RTLD_NEXT, "free");
  real_posix_memalign = (posix_memalign_fn)dlsym(RTLD_NEXT, "posix_memalign");
  real_aligned_alloc = (aligned_alloc_fn)dlsym(RTLD_NEXT, "aligned_alloc");
  real_memalign = (aligned_alloc_fn)dlsym(RTLD_NEXT, "memalign");
  real_valloc = (valloc_fn)dlsym(RTLD_NEXT, "valloc");
  real_pvalloc = (valloc_fn)dlsym(RTLD_NEXT, "pvalloc");
  real_malloc = (malloc_fn)dlsym(RTLD_NEXT, "malloc");  // last: it marks resolution done
  resolving = 0;
}

static void count(size_t bytes) {
  __atomic_add_fetch(&n_alloc, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&n_bytes, bytes, __ATOMIC_RELAXED);
}

void* malloc(size_t n) {
  resolve();
  if (!real_malloc) return boot_alloc(n);
  count(n);
  return real_malloc(n);
}

void* calloc(size_t a, size_t b) {
  resolve();
  if (!real_calloc || !real_malloc) {
    if (b && a > SIZE_MAX / b) return NULL;
    return boot_alloc(a * b);  // static storage is already zero
  }
  count(a * b);
  return real_calloc(a, b);
}

void* realloc(void* p, size_t n) {
  resolve();
  if (is_boot(p)) {  // move a bootstrap block to the real heap (its size is unknown: copy what can be there)
    const size_t avail = (size_t)(boot_buf + sizeof(boot_buf) - (unsigned char*)p);
    void* q = malloc(n);
    if (q) memcpy(q, p, n < avail ? n : avail);
    return q;
  }
  if (!real_realloc) return NULL;
  count(n);
  return real_realloc(p, n);
}

void free(void* p) {
  if (!p || is_boot(p)) return;
  resolve();
  __atomic_add_fetch(&n_free, 1, __ATOMIC_RELAXED);
  if (real_free) real_free(p);
}

int posix_memalign(void** out, size_t align, size_t n) {
  resolve();
  if (!real_posix_memalign) return ENOMEM;
  count(n);
  return real_posix_memalign(out, align, n);
}

void* aligned_alloc(size_t align, size_t n) {
  resolve();
  if (!real_aligned_alloc) return NULL;
  count(n);
  return real_aligned_alloc(align, n);
}

void* memalign(size_t align, size_t n) {
  resolve();
  if (!real_memalign) return NULL;
  count(n);
  return real_memalign(align, n);
}

void* valloc(size_t n) {
  resolve();
  if (!real_valloc) return NULL;
  count(n);
  return real_valloc(n);
}

void* pvalloc(size_t n) {
  resolve();
  if (!real_pvalloc) return NULL;
  count(n);
  return real_pvalloc(n);
}

// Decimal into buf (no allocation); returns the length.
static size_t put_u64(char* buf, unsigned long long v) {
  char tmp[24];
  size_t n = 0;
  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  for (size_t i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  return n;
}

// Runs after main returns or exit() is called, before libc's own teardown.
__attribute__((destructor)) static void report(void) {
  const char* path = getenv("TERN_ALLOC_COUNT_FILE");
  if (!path || !*path) return;
  char line[128];
  size_t n = 0;
  memcpy(line + n, "allocs ", 7); n += 7;
  n += put_u64(line + n, __atomic_load_n(&n_alloc, __ATOMIC_RELAXED));
  memcpy(line + n, " frees ", 7); n += 7;
  n += put_u64(line + n, __atomic_load_n(&n_free, __ATOMIC_RELAXED));
  memcpy(line + n, " bytes ", 7); n += 7;
  n += put_u64(line + n, __atomic_load_n(&n_bytes, __ATOMIC_RELAXED));
  line[n++] = '\n';
  const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t w = write(fd, line, n);
  (void)w;
  close(fd);
}
