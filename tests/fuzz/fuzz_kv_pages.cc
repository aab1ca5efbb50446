// Fuzz target: a state machine over the paged KV cache (runtime/kv_pages.h).
// The input picks a pool shape, then a sequence of operations on up to 4
// sequences: append (reserve + write positions, as Model does), reserve
// without writing, truncate (rewind), reset and fork (prefix sharing), and
// with the prefix cache on (one bit of the shape): commit (register full
// blocks, the values written standing for token ids) and match (a reset
// sequence takes the registered blocks a prompt starts with: the prompt is
// another sequence's content, cut and perhaps altered).
// An independent model keeps what every sequence should read at every valid
// position and predicts every operation's outcome. After each operation:
//  - reserve succeeds exactly when the model says it fits (context and free
//    blocks, including the copy-on-write block) and fails without changing
//    anything otherwise;
//  - each block's refcount equals the number of block-table entries naming
//    it (no leak, no double ownership within a sequence), the free count is
//    the number of unreferenced blocks;
//  - every sequence reads back, through its block table, exactly what was
//    written at each of its positions (copy-on-write correct by content:
//    a write through one sequence never shows in another, nor in a
//    registered block: a match reads back the prompt it matched);
//  - a match covers whole blocks, never the prompt's last token.
// With a window pool (another bit of the shape; Gemma 3's layout): every
// sequence has a twin in a second pool that keeps only a window of W
// positions, given back as appends move on (Model::forward_batch's keep_from)
// and shared by the prefix cache; truncate, reset, fork, commit and match
// follow it. Checked there too: refcounts and the free count, the twin's
// length, and every position it still holds (from its first held block)
// reading back what was written or matched.
// The model and the checks are FUZZ_NO_COVERAGE (fuzz_support.h): they run
// after every operation over every position, and instrumented they were
// most of an exec; the operation dispatch and the pool itself stay
// instrumented and guide the fuzzer.
#include <cstring>
#include <vector>

#include "runtime/kv_pages.h"
#include "tests/fuzz/fuzz_support.h"

using namespace tern;
using tern::fuzz::ByteReader;

namespace {

constexpr uint32_t kSeqs = 4;
constexpr uint32_t kLayers = 2, kKvHeads = 1, kHeadDim = 2;
constexpr uint32_t kMaxBlocks = 24;
constexpr uint32_t kMaxSeqBlocks = 11;   // block table sizes: u8 % 12
constexpr uint32_t kMaxBlockTokens = 8;  // block sizes: 1 + u8 % 8
constexpr uint32_t kMaxPositions = kMaxSeqBlocks * kMaxBlockTokens;
constexpr uint32_t kMaxOps = 512;  // per input: long enough for deep states, short enough to stay fast
// An input is read up to 6 shape bytes + 2 bytes per operation: scripts/fuzz.sh
// passes -max_len=1030 (keep the two in step).

// Expected value at each position [0, len) of one sequence. No sequence can
// hold more than kMaxPositions, so a fixed array (nothing allocated per exec).
struct Model {
  uint16_t content[kMaxPositions];
  uint32_t len = 0;
  FUZZ_NO_COVERAGE void push(uint16_t value) {
    FUZZ_CHECK(len < kMaxPositions, "model holds %u positions already", len);
    content[len++] = value;
  }
};

struct Harness {
  KvPool pool;
  KvSequence seq[kSeqs];
  // Window mode: the sliding-window twins, in their own pool.
  bool windowed = false;
  uint32_t window = 0;
  KvPool wpool;
  KvSequence wseq[kSeqs];
  Model model[kSeqs];
  Model committed[kSeqs];  // each sequence's content when it last committed: prompts may ask for it later
  uint32_t bt = 0, n_blocks = 0;
  uint16_t stamp = 1;

  FUZZ_NO_COVERAGE size_t elem(uint32_t block, uint32_t pos_in_block) const {
    return (size_t(block) * bt + pos_in_block) * kKvHeads * kHeadDim;
  }
  // The values written at a position holding `value`, per layer and element.
  FUZZ_NO_COVERAGE static uint16_t k_value(uint16_t value, uint32_t h) { return uint16_t(value + h); }
  FUZZ_NO_COVERAGE static uint16_t v_value(uint16_t value, uint32_t l) { return uint16_t(value ^ (0x5555 + l)); }
  FUZZ_NO_COVERAGE void write(KvSequence& s, uint32_t pos, uint16_t value) {
    write_in(pool, s, pos, value);
    if (windowed) write_in(wpool, *s.window, pos, value);
  }
  FUZZ_NO_COVERAGE void write_in(KvPool& into, const KvSequence& s, uint32_t pos, uint16_t value) {
    const size_t e = elem(s.block_table[pos / bt], pos % bt);
    for (uint32_t l = 0; l < kLayers; ++l) {
      uint16_t* k = into.k_layer(l) + e;
      uint16_t* v = into.v_layer(l) + e;
      for (uint32_t h = 0; h < kKvHeads * kHeadDim; ++h) {
        k[h] = k_value(value, h);
        v[h] = v_value(value, l);
      }
    }
  }

  // References to block b across all block tables.
  FUZZ_NO_COVERAGE uint32_t refs(uint32_t b) const {
    uint32_t r = 0;
    for (const KvSequence& s : seq)
      for (uint32_t i = 0; i < s.n_blocks; ++i) r += s.block_table[i] == b;
    return r;
  }

  // Table entries naming each block, all blocks in one pass.
  FUZZ_NO_COVERAGE void count_refs(uint32_t* counts) const {
    for (uint32_t b = 0; b < n_blocks; ++b) counts[b] = 0;
    for (const KvSequence& s : seq)
      for (uint32_t i = 0; i < s.n_blocks; ++i)
        if (s.block_table[i] < n_blocks) ++counts[s.block_table[i]];
  }

  FUZZ_NO_COVERAGE void check_all() {
    const uint16_t* k[kLayers];
    const uint16_t* v[kLayers];
    for (uint32_t l = 0; l < kLayers; ++l) k[l] = pool.k_layer(l), v[l] = pool.v_layer(l);
    uint32_t counts[kMaxBlocks];
    count_refs(counts);
    uint32_t unreferenced = 0;
    for (uint32_t b = 0; b < n_blocks; ++b) {
      const uint32_t r = counts[b];
      FUZZ_CHECK(pool.refcount(b) == r, "block %u: refcount %u, %u table entries", b, pool.refcount(b), r);
      unreferenced += r == 0;
    }
    FUZZ_CHECK(pool.free_blocks() == unreferenced, "free count %u, %u unreferenced blocks", pool.free_blocks(),
               unreferenced);
    for (uint32_t i = 0; i < kSeqs; ++i) {
      const KvSequence& s = seq[i];
      FUZZ_CHECK(s.n_blocks <= s.max_blocks, "seq %u holds %u blocks, table of %u", i, s.n_blocks, s.max_blocks);
      FUZZ_CHECK(s.n_past == model[i].len, "seq %u: n_past %u, model %u", i, s.n_past, model[i].len);
      FUZZ_CHECK(uint64_t(s.n_blocks) * bt >= s.n_past, "seq %u: %u positions in %u blocks", i, s.n_past, s.n_blocks);
      for (uint32_t a = 0; a < s.n_blocks; ++a) {
        FUZZ_CHECK(s.block_table[a] < n_blocks, "seq %u: block id %u out of range", i, s.block_table[a]);
        for (uint32_t b = a + 1; b < s.n_blocks; ++b)
          FUZZ_CHECK(s.block_table[a] != s.block_table[b], "seq %u holds block %u twice", i, s.block_table[a]);
      }
      // Position p is offset p % bt of table entry p / bt (walked, not divided:
      // this loop is most of an exec).
      for (uint32_t p = 0, a = 0; p < s.n_past; ++a) {
        for (uint32_t o = 0; o < bt && p < s.n_past; ++o, ++p) {
          const uint16_t want = model[i].content[p];
          const size_t e = elem(s.block_table[a], o);
          for (uint32_t l = 0; l < kLayers; ++l) {
            for (uint32_t h = 0; h < kKvHeads * kHeadDim; ++h) {
              FUZZ_CHECK(k[l][e + h] == k_value(want, h), "seq %u pos %u layer %u: K corrupted", i, p, l);
              FUZZ_CHECK(v[l][e + h] == v_value(want, l), "seq %u pos %u layer %u: V corrupted", i, p, l);
            }
          }
        }
      }
    }
  }

  // The window twins: held entries [first_block, n_blocks) name each block
  // as often as its refcount says; the twin is as long as its sequence, and
  // every position from its first held block reads back the model.
  FUZZ_NO_COVERAGE void check_window() {
    uint32_t counts[kMaxBlocks] = {};
    for (const KvSequence& w : wseq)
      for (uint32_t a = w.first_block; a < w.n_blocks; ++a) {
        FUZZ_CHECK(w.block_table[a] < n_blocks, "window twin: block id %u out of range", w.block_table[a]);
        ++counts[w.block_table[a]];
      }
    uint32_t unreferenced = 0;
    for (uint32_t b = 0; b < n_blocks; ++b) {
      FUZZ_CHECK(wpool.refcount(b) == counts[b], "window block %u: refcount %u, %u held entries", b,
                 wpool.refcount(b), counts[b]);
      unreferenced += counts[b] == 0;
    }
    FUZZ_CHECK(wpool.free_blocks() == unreferenced, "window pool: free count %u, %u unreferenced",
               wpool.free_blocks(), unreferenced);
    for (uint32_t i = 0; i < kSeqs; ++i) {
      const KvSequence& w = wseq[i];
      FUZZ_CHECK(w.n_past == seq[i].n_past, "seq %u: window twin at %u, sequence at %u", i, w.n_past, seq[i].n_past);
      FUZZ_CHECK(w.first_block <= w.n_blocks && uint64_t(w.n_blocks) * bt >= w.n_past, "seq %u: twin holds [%u, %u)",
                 i, w.first_block, w.n_blocks);
      for (uint32_t p = w.first_block * bt; p < w.n_past; ++p) {
        const size_t e = elem(w.block_table[p / bt], p % bt);
        for (uint32_t l = 0; l < kLayers; ++l)
          FUZZ_CHECK(wpool.k_layer(l)[e] == k_value(model[i].content[p], 0) &&
                         wpool.v_layer(l)[e] == v_value(model[i].content[p], l),
                     "seq %u pos %u layer %u: window K/V corrupted", i, p, l);
      }
    }
  }

  // Model's prediction for reserve(s, new_len): ok, or why not.
  FUZZ_NO_COVERAGE StatusCode predict_reserve(uint32_t i, uint32_t new_len) const {
    const KvSequence& s = seq[i];
    const uint64_t need = (uint64_t(new_len) + bt - 1) / bt;
    if (need > s.max_blocks) return StatusCode::kContextFull;
    const uint32_t wb = s.n_past / bt;
    const bool cow = new_len > s.n_past && wb < s.n_blocks &&
                     (refs(s.block_table[wb]) > 1 || pool.is_registered(s.block_table[wb]));
    const uint64_t extra = (need > s.n_blocks ? need - s.n_blocks : 0) + (cow ? 1 : 0);
    uint32_t counts[kMaxBlocks], free_now = 0;
    count_refs(counts);
    for (uint32_t b = 0; b < n_blocks; ++b) free_now += counts[b] == 0;
    return extra > free_now ? StatusCode::kKvFull : StatusCode::kOk;
  }

  FUZZ_NO_COVERAGE bool reserve_checked(uint32_t i, uint32_t new_len) {
    KvSequence& s = seq[i];
    const StatusCode want = predict_reserve(i, new_len);
    // check_all after the previous operation bounded n_blocks by max_blocks.
    uint32_t before[kMaxSeqBlocks];
    const uint32_t n_before = s.n_blocks;
    FUZZ_CHECK(n_before <= kMaxSeqBlocks, "seq %u holds %u blocks", i, n_before);
    if (n_before) std::memcpy(before, s.block_table, n_before * 4);
    const uint32_t free_before = pool.free_blocks();
    const Status st = pool.reserve(&s, new_len);
    FUZZ_CHECK(st.code() == want, "reserve(seq %u, %u): got %s, model says %s", i, new_len,
               status_code_name(st.code()), status_code_name(want));
    if (!st.is_ok()) {
      FUZZ_CHECK(s.n_blocks == n_before && pool.free_blocks() == free_before &&
                     (n_before == 0 || std::memcmp(before, s.block_table, n_before * 4) == 0),
                 "failed reserve changed seq %u", i);
      return false;
    }
    const uint32_t need = uint32_t((uint64_t(new_len) + bt - 1) / bt);
    FUZZ_CHECK(s.n_blocks == (need > n_before ? need : n_before), "reserve: seq %u has %u blocks", i, s.n_blocks);
    // Only the block receiving the next write may have been replaced (copy-on-write).
    for (uint32_t a = 0; a < n_before; ++a) {
      if (a != s.n_past / bt) FUZZ_CHECK(s.block_table[a] == before[a], "reserve moved block %u of seq %u", a, i);
    }
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteReader in{data, size};
  static std::vector<uint8_t> arena_mem;
  Harness H;  // fresh state per input

  KvPoolShape shape;
  shape.layers = kLayers;
  shape.kv_heads = kKvHeads;
  shape.head_dim = kHeadDim;
  shape.block_tokens = 1 + in.u8() % kMaxBlockTokens;
  const uint8_t blocks_byte = in.u8();
  shape.n_blocks = 1 + blocks_byte % kMaxBlocks;
  shape.prefix_cache = (blocks_byte / kMaxBlocks) % 2 == 1;
  H.windowed = (blocks_byte / kMaxBlocks) / 2 % 2 == 1;
  H.window = 1 + (blocks_byte * 7u) % (3 * shape.block_tokens);
  uint32_t max_blocks[kSeqs];
  uint32_t max_max = 0;
  for (uint32_t i = 0; i < kSeqs; ++i) {
    max_blocks[i] = in.u8() % (kMaxSeqBlocks + 1);  // 0: a sequence that can hold nothing
    if (max_blocks[i] > max_max) max_max = max_blocks[i];
  }
  H.bt = shape.block_tokens;
  H.n_blocks = shape.n_blocks;
  arena_mem.assign(2 * KvPool::arena_bytes(shape, kSeqs, max_max) + Arena::kDefaultAlign, 0);
  Arena arena;
  arena.init(arena_mem.data(), arena_mem.size());
  FUZZ_CHECK(H.pool.init(shape, &arena).is_ok(), "pool init");
  for (uint32_t i = 0; i < kSeqs; ++i) {
    FUZZ_CHECK(H.pool.init_sequence(&H.seq[i], max_blocks[i], &arena).is_ok(), "sequence init");
  }
  if (H.windowed) {
    FUZZ_CHECK(H.wpool.init(shape, &arena).is_ok(), "window pool init");
    for (uint32_t i = 0; i < kSeqs; ++i) {
      FUZZ_CHECK(H.wpool.init_sequence(&H.wseq[i], max_blocks[i], &arena).is_ok(), "window sequence init");
      H.seq[i].window = &H.wseq[i];
    }
    H.pool.set_window_pool(&H.wpool, H.window);
  }
  H.check_all();

  for (uint32_t n_ops = 0; !in.empty() && n_ops < kMaxOps; ++n_ops) {
    const uint8_t op = in.u8();
    const uint32_t i = (op >> 3) % kSeqs;
    KvSequence& s = H.seq[i];
    Model& m = H.model[i];
    switch (op % (shape.prefix_cache ? 8 : 6)) {
      case 0:
      case 1: {  // append k positions: reserve, write, advance (Model::forward's order)
        const uint32_t k = 1 + in.u8() % (2 * H.bt + 3);
        const uint32_t new_len = s.n_past + k;
        // The window twin gives back what the first new query cannot see; a
        // sequence rewound below what its twin still holds cannot go on
        // (Model::forward_batch refuses it).
        const uint32_t keep_from = s.n_past + 1 > H.window ? s.n_past + 1 - H.window : 0;
        if (H.windowed && s.n_past > 0 && keep_from / H.bt < H.wseq[i].first_block) break;
        if (H.reserve_checked(i, new_len)) {
          if (H.windowed && !H.wpool.reserve(&H.wseq[i], new_len, keep_from).is_ok()) {
            H.pool.truncate(&s, s.n_past);  // as Model::reserve_batch gives the global blocks back
            break;
          }
          for (uint32_t p = s.n_past; p < new_len; ++p) {
            H.write(s, p, H.stamp);
            m.push(H.stamp);
            H.stamp = uint16_t(H.stamp * 5 + 3);
          }
          s.n_past = new_len;
          if (H.windowed) H.wseq[i].n_past = new_len;
        }
        break;
      }
      case 2: {  // reserve ahead without writing
        const uint32_t new_len = s.n_past + in.u8() % (3 * H.bt + 1);
        H.reserve_checked(i, new_len);
        break;
      }
      case 3: {  // truncate (rewind) to any length, also past n_past
        const uint32_t new_len = in.u8() % (s.n_past + 2 * H.bt + 1);
        const uint32_t old_blocks = s.n_blocks;
        H.pool.truncate(&s, new_len);
        const uint32_t keep = (new_len + H.bt - 1) / H.bt;
        FUZZ_CHECK(s.n_blocks == (old_blocks < keep ? old_blocks : keep), "truncate: %u blocks kept", s.n_blocks);
        if (new_len < m.len) m.len = new_len;
        break;
      }
      case 4:  // reset
        H.pool.reset(&s);
        FUZZ_CHECK(s.n_blocks == 0 && s.n_past == 0, "reset left blocks");
        m.len = 0;
        break;
      case 5: {  // fork seq i into another sequence
        const uint32_t j = (i + 1 + in.u8() % (kSeqs - 1)) % kSeqs;
        KvSequence& d = H.seq[j];
        const uint32_t full = s.n_past / H.bt;
        const Status st = H.pool.fork(s, &d);
        if (full > d.max_blocks) {
          FUZZ_CHECK(st.code() == StatusCode::kContextFull, "fork into a too-small table: %s",
                     status_code_name(st.code()));
          FUZZ_CHECK(d.n_blocks == 0 && d.n_past == 0, "failed fork left the target non-empty");
          H.model[j].len = 0;
        } else {
          FUZZ_CHECK(st.is_ok(), "fork failed: %s", st.message());
          FUZZ_CHECK(d.n_blocks == full && d.n_past == full * H.bt, "fork shape");
          for (uint32_t b = 0; b < full; ++b) FUZZ_CHECK(d.block_table[b] == s.block_table[b], "fork table");
          std::memcpy(H.model[j].content, m.content, full * H.bt * sizeof(uint16_t));  // j != i
          H.model[j].len = full * H.bt;
        }
        break;
      }
      case 6: {  // commit: register seq i's full blocks (its values as token ids)
        int32_t toks[kMaxPositions];
        for (uint32_t p = 0; p < m.len; ++p) toks[p] = m.content[p];
        H.pool.commit_blocks(&s, toks);
        H.committed[i] = m;
        FUZZ_CHECK(s.hashed_blocks <= s.n_past / H.bt, "seq %u: %u blocks hashed of %u positions", i, s.hashed_blocks,
                   s.n_past);
        break;
      }
      case 7: {  // match: seq i reset, then a prompt from seq j's content
        const uint8_t pick = in.u8();
        const uint32_t j = pick % kSeqs;
        // A live sequence's content, or what one registered (since rewritten?).
        const Model& src = pick & 0x40 ? H.committed[j] : H.model[j];
        const uint8_t shape_byte = in.u8();
        int32_t prompt[kMaxPositions];
        const uint32_t cut = src.len ? shape_byte % (src.len + 1) : 0;
        uint32_t n = 0;
        for (; n < cut; ++n) prompt[n] = src.content[n];
        if (shape_byte & 0x80 && n > 0) prompt[(shape_byte * 7u) % n] ^= 1;  // altered somewhere
        for (uint32_t e = 0; e < 1u + shape_byte % 3u && n < kMaxPositions; ++e) prompt[n++] = int32_t(e + 70000);
        H.pool.reset(&s);
        const uint32_t got = H.pool.match_prefix(&s, prompt, n);
        FUZZ_CHECK(got % H.bt == 0 && got <= n - 1 && got <= uint64_t(s.max_blocks) * H.bt,
                   "match of %u tokens covered %u positions (blocks of %u)", n, got, H.bt);
        FUZZ_CHECK(s.n_past == got && s.n_blocks == got / H.bt, "match left n_past %u, %u blocks", s.n_past,
                   s.n_blocks);
        m.len = 0;
        for (uint32_t p = 0; p < got; ++p) m.push(uint16_t(prompt[p]));  // check_all reads them back
        if (H.windowed && got > 0) {
          const uint32_t keep_from = got + 1 > H.window ? got + 1 - H.window : 0;
          FUZZ_CHECK(H.wseq[i].first_block == keep_from / H.bt, "match: window twin from block %u, needs %u",
                     H.wseq[i].first_block, keep_from / H.bt);
        }
        break;
      }
    }
    H.check_all();
    if (H.windowed) H.check_window();
  }
  // Resetting every sequence returns every block.
  for (KvSequence& s : H.seq) H.pool.reset(&s);
  FUZZ_CHECK(H.pool.free_blocks() == H.n_blocks, "%u of %u blocks free after resetting all", H.pool.free_blocks(),
             H.n_blocks);
  FUZZ_CHECK(!H.windowed || H.wpool.free_blocks() == H.n_blocks, "%u of %u window blocks free after resetting all",
             H.wpool.free_blocks(), H.n_blocks);
  return 0;
}
