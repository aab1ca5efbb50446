// tern-freestanding-probe BLOB N ID[,ID...] [CONTEXT]: open BLOB with a static arena,
// prefill the prompt ids, generate N tokens greedily (no stop tokens) and
// print "tokens: a b c ...". It is the host twin of tools/firmware (same
// steps, the OS port instead of the bare board), and it is linked without the
// allocating C++ runtime (tests/freestanding/CMakeLists.txt): that it links
// at all is the freestanding proof; that its tokens equal tern-run's is the
// proof that nothing was lost on the way.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime/engine.h"
#include "runtime/generate.h"

// The C++ ABI hooks the core uses, defined here because this program links
// no C++ runtime (Itanium C++ ABI 3.3.3: the first byte of the 64-bit guard
// says "initialized"; the second marks an initialization in progress).
extern "C" int __cxa_guard_acquire(uint64_t* guard) {
  unsigned char* g = reinterpret_cast<unsigned char*>(guard);
  for (;;) {
    if (__atomic_load_n(&g[0], __ATOMIC_ACQUIRE)) return 0;
    unsigned char idle = 0;
    if (__atomic_compare_exchange_n(&g[1], &idle, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
      if (!__atomic_load_n(&g[0], __ATOMIC_ACQUIRE)) return 1;  // this thread initializes
      __atomic_store_n(&g[1], 0, __ATOMIC_RELEASE);
      return 0;
    }
  }
}
extern "C" void __cxa_guard_release(uint64_t* guard) {
  unsigned char* g = reinterpret_cast<unsigned char*>(guard);
  __atomic_store_n(&g[0], 1, __ATOMIC_RELEASE);
  __atomic_store_n(&g[1], 0, __ATOMIC_RELEASE);
}
extern "C" void __cxa_guard_abort(uint64_t* guard) {
  __atomic_store_n(&reinterpret_cast<unsigned char*>(guard)[1], 0, __ATOMIC_RELEASE);
}
extern "C" void __cxa_pure_virtual() { std::abort(); }

namespace {

// Enough for the tiny test models; Engine::open names the shortfall otherwise.
alignas(64) unsigned char g_arena[64u << 20];

struct Printer {
  char line[4096] = {0};
  size_t n = 0;
};

bool on_token(void* ctx, int32_t token, bool) {
  Printer* p = static_cast<Printer*>(ctx);
  const int k = std::snprintf(p->line + p->n, sizeof(p->line) - p->n, " %d", int(token));
  if (k > 0 && size_t(k) < sizeof(p->line) - p->n) p->n += size_t(k);
  return true;
}

int fail(const tern::Status& s) {
  std::fprintf(stderr, "tern-freestanding-probe: error [%s]: %s\n", tern::status_code_name(s.code()), s.message());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: tern-freestanding-probe BLOB N_TOKENS ID[,ID...] [MAX_CONTEXT]\n");
    return 2;
  }
  const long n_gen = std::strtol(argv[2], nullptr, 10);
  int32_t prompt[64];
  uint32_t n_prompt = 0;
  for (const char* p = argv[3]; *p && n_prompt < 64;) {
    char* end = nullptr;
    prompt[n_prompt++] = int32_t(std::strtol(p, &end, 10));
    if (end == p) { std::fprintf(stderr, "tern-freestanding-probe: bad id list '%s'\n", argv[3]); return 2; }
    p = *end == ',' ? end + 1 : end;
  }
  if (n_gen <= 0 || n_prompt == 0) { std::fprintf(stderr, "tern-freestanding-probe: need N > 0 and ids\n"); return 2; }

  tern::EngineOptions o;
  o.model_path = argv[1];
  o.isa = "scalar";  // the reference the bare-metal build runs
  o.arena_buffer = g_arena;
  o.arena_bytes = sizeof(g_arena);
  if (argc == 5) o.limits.max_context = uint32_t(std::strtoul(argv[4], nullptr, 10));
  tern::Engine engine;
  tern::Status s = engine.open(o);
  if (!s.is_ok()) return fail(s);

  tern::TokenHistory h;
  h.ids = engine.history(0);
  h.cap = engine.limits().max_context;
  if (n_prompt >= h.cap) { std::fprintf(stderr, "tern-freestanding-probe: prompt longer than the context\n"); return 2; }
  for (uint32_t i = 0; i < n_prompt; ++i) h.ids[i] = prompt[i];
  h.n = n_prompt;
  Printer printer;
  tern::GenerateRequest req;
  req.max_new_tokens = uint32_t(n_gen);
  req.on_token = on_token;
  req.ctx = &printer;
  tern::GenerateStats st;
  s = tern::generate(&engine, engine.sequence(0), &h, req, &st);
  if (!s.is_ok()) return fail(s);
  std::printf("tokens:%s\n", printer.line);
  std::printf("arena: plan %zu bytes, high-water %zu bytes\n", engine.plan().total, engine.arena().high_water());
  return 0;
}
