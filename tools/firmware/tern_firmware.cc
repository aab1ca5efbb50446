// tern-firmware: greedy generation on a Cortex-M board with no OS. The blob
// is a constant array linked into the image (blob.S), the arena a static
// array in the board's PSRAM, output a semihosting character sink. Prints
//   tokens: <ids>
// with the same ids tern-run prints for the same blob, prompt and count on a
// host (--isa scalar --ignore-eos), then the memory and timing figures.
// Exit status (through semihosting): 0 ok, 1 on any error.
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "port/baremetal/semihosting.h"
#include "port/clock.h"
#include "runtime/engine.h"
#include "runtime/generate.h"

extern "C" const unsigned char tern_blob[];
extern "C" const unsigned char tern_blob_end[];

namespace {

__attribute__((section(".tern_arena"), aligned(64))) unsigned char g_arena[TERN_FIRMWARE_ARENA_BYTES];
// Not on the stack: Engine holds per-sequence tables for up to 256 sequences.
tern::Engine g_engine;

constexpr int32_t kPrompt[] = {TERN_FIRMWARE_PROMPT_IDS};
constexpr uint32_t kTokens = TERN_FIRMWARE_TOKENS;

void print(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void print(const char* fmt, ...) {
  char line[256];
  va_list args;
  va_start(args, fmt);
  const int n = std::vsnprintf(line, sizeof(line), fmt, args);
  va_end(args);
  if (n > 0) tern::semihost_write(line, size_t(n) < sizeof(line) ? size_t(n) : sizeof(line) - 1);
}

bool on_token(void*, int32_t token, bool) {
  print(" %ld", long(token));
  return true;
}

int fail(const tern::Status& s) {
  print("\ntern-firmware: error [%s]: %s\n", tern::status_code_name(s.code()), s.message());
  return 1;
}

}  // namespace

int main() {
  tern::EngineOptions o;
  o.blob_data = tern_blob;
  o.blob_size = size_t(tern_blob_end - tern_blob);
  o.isa = "scalar";
  o.arena_buffer = g_arena;
  o.arena_bytes = sizeof(g_arena);
  o.limits.max_context = TERN_FIRMWARE_MAX_CONTEXT;
  tern::Status s = g_engine.open(o);
  if (!s.is_ok()) return fail(s);

  tern::TokenHistory h;
  h.ids = g_engine.history(0);
  h.cap = g_engine.limits().max_context;
  constexpr uint32_t n_prompt = sizeof(kPrompt) / sizeof(kPrompt[0]);
  if (n_prompt >= h.cap) return fail(tern::Status::error(tern::StatusCode::kPromptTooLong, "prompt too long"));
  for (uint32_t i = 0; i < n_prompt; ++i) h.ids[i] = kPrompt[i];
  h.n = n_prompt;
  tern::GenerateRequest req;
  req.max_new_tokens = kTokens;
  req.on_token = on_token;
  tern::GenerateStats st;
  print("tokens:");
  s = tern::generate(&g_engine, g_engine.sequence(0), &h, req, &st);
  print("\n");
  if (!s.is_ok()) return fail(s);
  print("blob: %lu bytes linked in; arena: plan %lu bytes, high-water %lu of %lu bytes; isa %s\n",
        static_cast<unsigned long>(g_engine.blob_bytes()), static_cast<unsigned long>(g_engine.plan().total),
        static_cast<unsigned long>(g_engine.arena().high_water()), static_cast<unsigned long>(sizeof(g_arena)),
        g_engine.isa_name());
  print("time (emulated clock): open %lu us, prefill %lu tokens %lu us, decode %lu tokens %lu us\n",
        static_cast<unsigned long>(g_engine.open_ms() * 1000.0), static_cast<unsigned long>(st.prompt_tokens),
        static_cast<unsigned long>(st.prefill_ns / 1000), static_cast<unsigned long>(st.generated),
        static_cast<unsigned long>(st.decode_ns / 1000));
  return 0;
}
