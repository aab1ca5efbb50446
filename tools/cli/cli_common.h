// Command-line plumbing shared by tern-run, tern-chat and tern-bench: the
// flags every tool takes (model, limits, threads, ISA, sampling), JSON
// string escaping and the memory report.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/generate.h"

namespace tern::cli {

// The version every tool prints for --version ("tern 0.2.0").
const char* version();
// "TOOL: unknown argument 'ARG' (TOOL --help lists the options)" on stderr, one
// line; returns 2, the exit code for a usage error.
int unknown_argument(const char* tool, const char* arg);

// Which common flags the command line gave explicitly: an explicit flag wins
// over the environment, and sampling flags with --temp 0 get a warning.
struct CommonFlagsSeen {
  bool threads = false;
  bool isa = false;
  bool seed = false;
  bool temp = false;
  bool sampling = false;  // --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n
};

// Parse argv[*i] (and its value) if it is a common flag; advances *i. The
// short forms -m, -t, -c, -s stand for --model, --threads, --max-context, --seed.
// Returns 1 if consumed, 0 if not a common flag, -1 on a bad value (*err set).
int parse_common_flag(int argc, char** argv, int* i, EngineOptions* opt, std::string* err,
                      CommonFlagsSeen* seen = nullptr);
// Help text for the common flags (the --isa list is this build's variants).
const char* common_flags_help();
// "auto, avxvnni, avx2, scalar": what --isa accepts in this build.
const char* isa_choices();

// After parsing, before opening the engine:
//   * TERN_ISA / TERN_THREADS apply only where no flag was given; a malformed
//     TERN_THREADS is an error (false, *err set), never silently ignored;
//   * more threads than this process's online CPUs: a warning on stderr;
//   * sampling (temperature > 0) without --seed: a random seed is drawn and
//     *seed_random set, so the tool can print it for a repeat with --seed;
//   * sampling flags with temperature 0: a warning that they have no effect.
bool finish_common_flags(const char* tool, EngineOptions* opt, const CommonFlagsSeen& seen, bool* seed_random,
                         std::string* err);

// Write s[0, n) as a JSON string literal (quotes included). Invalid UTF-8
// bytes become \ufffd, so the output is always valid JSON.
void json_string(FILE* f, const char* s, size_t n);

// {"blob_bytes":..,"arena_bytes":..,"arena_regions":{..},...} fields (no braces).
void json_memory_fields(FILE* f, const Engine& e);
// Human-readable memory and configuration report (REPL /stats).
void print_memory_report(FILE* f, const Engine& e);

// The arena plan for `opt` over an opened blob (the blob's limits overridden
// by the options), checked against the plan the blob stores.
struct PlanReport {
  RunLimits limits;
  MemoryPlan plan;
  size_t blob_bytes = 0;
};
Status plan_for(const ModelFile& file, size_t blob_bytes, const EngineOptions& opt, PlanReport* out);
// "max_context":..,"arena_plan":{..},"arena_bytes":..,"blob_bytes":.. (no braces).
void json_plan_fields(FILE* f, const PlanReport& r);
// The plan by category, in bytes and MiB.
void print_plan_text(FILE* f, const PlanReport& r);
// An error after argument parsing: "TOOL: error [code]: message" on stderr
// and, with json, one final {"done":true,"status":..,"error":..} on stdout.
// Returns 1.
int report_error(const char* tool, const Status& s, bool json);

// The blob's tokenizer alone (no weights, KV or threads: tern-run
// --tokenize, tern-info), its arena in *mem sized for encode inputs of up to
// max_text_bytes, and the chat format the engine would select (kind kNone if
// none). `file` and *mem must outlive *tok.
Status open_tokenizer(const ModelFile& file, size_t max_text_bytes, std::vector<uint8_t>* mem, TextTokenizer* tok,
                      ChatFormat* chat);

// --print-plan: the arena the tool would take for these options (the blob's
// limits overridden by the flags), by category, printed to stdout without
// starting the engine; text or one JSON object. Returns the exit code.
int print_plan(const EngineOptions& opt, bool json, const char* tool);

}  // namespace tern::cli
