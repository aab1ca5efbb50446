// Command-line plumbing shared by tern-run, tern-chat and tern-bench: the
// flags every tool takes (model, limits, threads, ISA, sampling), JSON
// string escaping and the memory report.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

#include "runtime/engine.h"
#include "runtime/generate.h"

namespace tern::cli {

// Parse argv[*i] (and its value) if it is a common flag; advances *i.
// Returns 1 if consumed, 0 if not a common flag, -1 on a bad value (*err set).
int parse_common_flag(int argc, char** argv, int* i, EngineOptions* opt, std::string* err);
// Help text for the common flags.
const char* common_flags_help();
// Apply TERN_ISA / TERN_THREADS from the environment when the flags were not given.
void apply_environment(EngineOptions* opt);

// Write s[0, n) as a JSON string literal (quotes included). Invalid UTF-8
// bytes become \ufffd, so the output is always valid JSON.
void json_string(FILE* f, const char* s, size_t n);

// {"blob_bytes":..,"arena_bytes":..,"arena_regions":{..},...} fields (no braces).
void json_memory_fields(FILE* f, const Engine& e);
// Human-readable memory and configuration report (REPL /stats).
void print_memory_report(FILE* f, const Engine& e);

// --print-plan: the arena the tool would take for these options (the blob's
// limits overridden by the flags), by category, printed to stdout without
// starting the engine; text or one JSON object. Returns the exit code.
int print_plan(const EngineOptions& opt, bool json, const char* tool);

}  // namespace tern::cli
