// The REPL's pure input logic without a terminal: the line editor (bytes in,
// buffer + cursor + redraw bytes out), the message joiner (""" blocks, a
// trailing backslash) and the command parser (/system, invalid UTF-8 count).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "runtime/utf8.h"
#include "tools/cli/line_editor.h"
#include "tools/cli/repl_line.h"

namespace tern::cli {
namespace {

using Event = LineEditor::Event;

struct Editor {
  explicit Editor(size_t cap = 256, size_t hist = 1024) : line(cap), stash(cap), history(hist) {
    ed.init(line.data(), stash.data(), cap, history.data(), hist);
  }
  // Feed all of s; the events in order.
  std::vector<Event> type(const std::string& s) {
    std::vector<Event> evs;
    size_t at = 0;
    while (at < s.size()) {
      Event e;
      at += ed.feed(s.data() + at, s.size() - at, &e);
      if (e != Event::kNone) evs.push_back(e);
    }
    return evs;
  }
  std::string text() const { return std::string(ed.line(), ed.len()); }
  std::string render(unsigned cols, const char* prompt = "> ") {
    std::string out(LineEditor::render_max(std::strlen(prompt)), '\0');
    out.resize(ed.render(prompt, std::strlen(prompt), cols, &out[0], out.size()));
    return out;
  }
  std::vector<char> line, stash, history;
  LineEditor ed;
};

const std::string kLeft = "\x1b[D", kRight = "\x1b[C", kUp = "\x1b[A", kDown = "\x1b[B";
const std::string kHome = "\x1b[H", kEnd = "\x1b[F", kDel = "\x1b[3~";

TEST(LineEditor, TypingAndEnter) {
  Editor e;
  EXPECT_TRUE(e.type("hello").empty());
  EXPECT_EQ(e.text(), "hello");
  EXPECT_EQ(e.ed.cursor(), 5u);
  EXPECT_EQ(e.type("\r"), std::vector<Event>{Event::kEnter});
  EXPECT_EQ(e.text(), "hello");
}

TEST(LineEditor, FeedStopsAtTheEventAndKeepsTheRest) {
  Editor e;
  const std::string in = "one\rtwo\r";
  Event ev;
  const size_t used = e.ed.feed(in.data(), in.size(), &ev);
  EXPECT_EQ(ev, Event::kEnter);
  EXPECT_EQ(used, 4u);
  EXPECT_EQ(e.text(), "one");
  e.ed.begin();
  EXPECT_EQ(e.ed.feed(in.data() + used, in.size() - used, &ev), 4u);
  EXPECT_EQ(ev, Event::kEnter);
  EXPECT_EQ(e.text(), "two");
}

TEST(LineEditor, CrLfIsOneEnter) {
  Editor e;
  EXPECT_EQ(e.type("a\r").size(), 1u);
  e.ed.begin();
  EXPECT_TRUE(e.type("\nb").empty()) << "the LF of CR LF must not end the next line";
  EXPECT_EQ(e.text(), "b");
  EXPECT_EQ(e.type("\n"), std::vector<Event>{Event::kEnter});
}

TEST(LineEditor, CursorMovesAndEdits) {
  Editor e;
  e.type("Wrold");
  e.type(kLeft + kLeft + kLeft);
  EXPECT_EQ(e.ed.cursor(), 2u);
  e.type("\x7f");  // backspace: "Wold"
  e.type(kRight);  // after 'o'
  e.type("r");
  EXPECT_EQ(e.text(), "World");
  e.type(kHome + "Hello " + kEnd + "!");
  EXPECT_EQ(e.text(), "Hello World!");
  e.type("\x01");  // Ctrl-A
  EXPECT_EQ(e.ed.cursor(), 0u);
  e.type(kDel);
  EXPECT_EQ(e.text(), "ello World!");
  e.type("\x05");  // Ctrl-E
  EXPECT_EQ(e.ed.cursor(), e.text().size());
  e.type("\x02\x02\x06");  // Ctrl-B twice, Ctrl-F
  EXPECT_EQ(e.ed.cursor(), e.text().size() - 1);
  e.type("\x04");  // Ctrl-D on a non-empty line deletes under the cursor
  EXPECT_EQ(e.text(), "ello World");
  e.type("\x1bOH");  // Home as SS3
  EXPECT_EQ(e.ed.cursor(), 0u);
  e.type("\x1b[4~");  // End as VT
  EXPECT_EQ(e.ed.cursor(), e.text().size());
}

TEST(LineEditor, KillKeys) {
  Editor e;
  e.type("alpha beta  gamma");
  e.type("\x17");  // Ctrl-W
  EXPECT_EQ(e.text(), "alpha beta  ");
  e.type("\x17");
  EXPECT_EQ(e.text(), "alpha ");
  e.type("one two");
  e.type("\x1b" "b");  // Alt-B: start of "two"
  EXPECT_EQ(e.ed.cursor(), 10u);
  e.type("\x0b");  // Ctrl-K
  EXPECT_EQ(e.text(), "alpha one ");
  e.type(kLeft + kLeft);
  e.type("\x15");  // Ctrl-U
  EXPECT_EQ(e.text(), "e ");
  EXPECT_EQ(e.ed.cursor(), 0u);
  e.type("\x1b[1;5C");  // Ctrl-Right: end of the word
  EXPECT_EQ(e.ed.cursor(), 1u);
}

TEST(LineEditor, Utf8AwareCursor) {
  Editor e;
  // "é" (2 bytes), "中" (3 bytes, wide), "😀" (4 bytes), "e" + U+0301 (one character on screen).
  e.type("a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80" "e\xcc\x81");
  const size_t n = e.text().size();
  EXPECT_EQ(n, 1u + 2 + 3 + 4 + 1 + 2);
  e.type(kLeft);
  EXPECT_EQ(e.ed.cursor(), n - 3) << "e + combining acute is one step";
  e.type(kLeft);
  EXPECT_EQ(e.ed.cursor(), n - 7);
  e.type(kLeft);
  EXPECT_EQ(e.ed.cursor(), n - 10);
  e.type("\x7f");  // backspace removes the whole "é"
  EXPECT_EQ(e.text(), "a\xe4\xb8\xad\xf0\x9f\x98\x80" "e\xcc\x81");
  EXPECT_EQ(e.ed.cursor(), 1u);
  e.type(kRight);
  EXPECT_EQ(e.ed.cursor(), 4u);
  // The cursor column counts the wide character as 2: prompt 2 + 'a' 1 + 2.
  EXPECT_NE(e.render(80).find("\r\x1b[5C"), std::string::npos);
}

TEST(LineEditor, InvalidUtf8StepsByteByByte) {
  Editor e;
  e.type("a\xff\xc3");  // a stray byte, then a cut lead byte
  EXPECT_EQ(e.text().size(), 3u);
  e.type(kLeft);
  EXPECT_EQ(e.ed.cursor(), 2u);
  e.type(kLeft);
  EXPECT_EQ(e.ed.cursor(), 1u);
  // Drawn as U+FFFD, never as raw invalid bytes.
  const std::string r = e.render(80);
  EXPECT_NE(r.find("a\xef\xbf\xbd\xef\xbf\xbd"), std::string::npos);
  EXPECT_EQ(r.find('\xff'), std::string::npos);
}

TEST(LineEditor, EofOnlyOnAnEmptyLineAndInterrupt) {
  Editor e;
  EXPECT_EQ(e.type("\x04"), std::vector<Event>{Event::kEof});
  e.ed.begin();
  e.type("abc");
  EXPECT_EQ(e.type("\x03"), std::vector<Event>{Event::kInterrupt});
  EXPECT_EQ(e.text(), "abc") << "the caller decides what Ctrl-C does to the line";
}

TEST(LineEditor, HistoryUpDownKeepsTheTypedLine) {
  Editor e;
  e.ed.history_add("first", 5);
  e.ed.history_add("second", 6);
  e.ed.history_add("second", 6);  // a repeat is not stored
  EXPECT_EQ(e.ed.history_count(), 2u);
  e.ed.begin();
  e.type("draft");
  e.type(kUp);
  EXPECT_EQ(e.text(), "second");
  e.type(kUp);
  EXPECT_EQ(e.text(), "first");
  e.type(kUp);  // nothing older
  EXPECT_EQ(e.text(), "first");
  e.type(" edited");
  e.type(kDown);
  EXPECT_EQ(e.text(), "second");
  e.type(kDown);
  EXPECT_EQ(e.text(), "draft");
  e.type("\x10");  // Ctrl-P
  EXPECT_EQ(e.text(), "second");
  e.type("\x0e");  // Ctrl-N
  EXPECT_EQ(e.text(), "draft");
}

TEST(LineEditor, HistoryDropsTheOldestWhenFull) {
  Editor e(64, 20);
  e.ed.history_add("aaaaaaaaaa", 10);
  e.ed.history_add("bbbbbbbbbb", 10);
  e.ed.history_add("cccc", 4);  // 24 bytes > 20: "aaaa..." goes
  EXPECT_EQ(e.ed.history_count(), 2u);
  e.ed.begin();
  e.type(kUp + kUp + kUp);
  EXPECT_EQ(e.text(), "bbbbbbbbbb");
  for (int i = 0; i < 300; ++i) {
    const std::string s = std::to_string(i);
    e.ed.history_add(s.data(), s.size());
  }
  EXPECT_LE(e.ed.history_count(), LineEditor::kMaxHistory);
}

TEST(LineEditor, OverflowIsReportedNotSilent) {
  Editor e(8);
  e.type("0123456789");
  EXPECT_EQ(e.text(), "01234567");
  EXPECT_TRUE(e.ed.overflow());
  e.ed.begin();
  EXPECT_FALSE(e.ed.overflow());
}

TEST(LineEditor, EscapeSequenceSplitAcrossFeeds) {
  Editor e;
  e.type("ab");
  e.type("\x1b");
  e.type("[");
  e.type("D");
  EXPECT_EQ(e.ed.cursor(), 1u);
  e.type("\x1b[200~");  // bracketed-paste marker: ignored
  e.type("\x1b[?1;2c");  // a terminal report: ignored
  EXPECT_EQ(e.text(), "ab");
}

TEST(LineEditor, RenderDrawsPromptLineAndCursor) {
  Editor e;
  e.type("hello");
  e.type(kLeft + kLeft);
  EXPECT_EQ(e.render(80), "\r> hello\x1b[0K\r\x1b[5C");
  e.type("\x0c");  // Ctrl-L clears the screen once
  EXPECT_EQ(e.render(80).substr(0, 7), "\x1b[H\x1b[2J");
  EXPECT_EQ(e.render(80).substr(0, 1), "\r");
}

TEST(LineEditor, LongLineScrollsToKeepTheCursorVisible) {
  Editor e(8192);
  std::string s;
  for (int i = 0; i < 6000; ++i) s += char('a' + i % 26);
  e.type(s);
  EXPECT_EQ(e.text(), s);
  // 20 columns: prompt 2, 17 shown, one left free.
  std::string r = e.render(20);
  EXPECT_EQ(r, "\r> " + s.substr(6000 - 17) + "\x1b[0K\r\x1b[19C");
  e.type(kHome);
  r = e.render(20);
  EXPECT_EQ(r, "\r> " + s.substr(0, 17) + "\x1b[0K\r\x1b[2C");
  // A very wide terminal is drawn at most kMaxColumns wide.
  r = e.render(100000);
  EXPECT_LE(r.size(), LineEditor::render_max(2));
}

TEST(LineEditor, ZeroWidthRunIsBounded) {
  Editor e(65536);
  std::string s = "x";
  for (int i = 0; i < 10000; ++i) s += "\xcc\x81";
  e.type(s);
  const std::string r = e.render(80);
  EXPECT_LE(r.size(), LineEditor::render_max(2));
}

TEST(CodepointColumns, Classes) {
  EXPECT_EQ(codepoint_columns('a'), 1);
  EXPECT_EQ(codepoint_columns(0x301), 0);
  EXPECT_EQ(codepoint_columns(0x4E2D), 2);
  EXPECT_EQ(codepoint_columns(0x1F600), 2);
  EXPECT_EQ(codepoint_columns(tern::kUtf8Invalid), 1);
}

// --- MessageJoiner ---

struct Joiner {
  Joiner(size_t cap = 1024) : buf(cap) { j.init(buf.data(), cap); }
  MessageJoiner::Step add(const std::string& s) { return j.add(s.data(), s.size()); }
  std::string text() const { return std::string(j.text(), j.len()); }
  std::vector<char> buf;
  MessageJoiner j;
};
using Step = MessageJoiner::Step;

TEST(MessageJoiner, PlainLineIsOneMessage) {
  Joiner j;
  EXPECT_EQ(j.add("hello"), Step::kDone);
  EXPECT_EQ(j.text(), "hello");
  EXPECT_FALSE(j.j.was_block());
}

TEST(MessageJoiner, TripleQuoteBlock) {
  Joiner j;
  EXPECT_EQ(j.add("\"\"\""), Step::kMore);
  EXPECT_TRUE(j.j.in_block());
  EXPECT_EQ(j.add("line one"), Step::kMore);
  EXPECT_EQ(j.add(""), Step::kMore);
  EXPECT_EQ(j.add("/not a command"), Step::kMore);
  EXPECT_EQ(j.add("\"\"\""), Step::kDone);
  EXPECT_TRUE(j.j.was_block());
  EXPECT_EQ(j.text(), "\nline one\n\n/not a command\n");
  // Text on the opening and closing lines counts; one line can be a block.
  EXPECT_EQ(j.add("  \"\"\"first"), Step::kMore);
  EXPECT_EQ(j.add("last\"\"\"  "), Step::kDone);
  EXPECT_EQ(j.text(), "first\nlast");
  EXPECT_EQ(j.add("\"\"\"one line\"\"\""), Step::kDone);
  EXPECT_EQ(j.text(), "one line");
}

TEST(MessageJoiner, BackslashContinues) {
  Joiner j;
  EXPECT_EQ(j.add("first \\"), Step::kMore);
  EXPECT_EQ(j.add("second\\"), Step::kMore);
  EXPECT_EQ(j.add("third"), Step::kDone);
  EXPECT_EQ(j.text(), "first \nsecond\nthird");
  EXPECT_FALSE(j.j.was_block());
}

TEST(MessageJoiner, TooLongIsReportedAtTheEnd) {
  Joiner j(16);
  EXPECT_EQ(j.add("\"\"\""), Step::kMore);
  EXPECT_EQ(j.add(std::string(40, 'x')), Step::kMore) << "the block goes on until it closes";
  EXPECT_EQ(j.add("\"\"\""), Step::kTooLong);
  EXPECT_EQ(j.add("fits"), Step::kDone);
  EXPECT_EQ(j.text(), "fits");
}

TEST(MessageJoiner, CancelDropsThePendingMessage) {
  Joiner j;
  j.add("\"\"\"");
  j.add("abc");
  j.j.cancel();
  EXPECT_FALSE(j.j.pending());
  EXPECT_EQ(j.add("next"), Step::kDone);
  EXPECT_EQ(j.text(), "next");
}

// --- parse_repl_line ---

ReplInput parse(const std::string& s, std::vector<char>* clean, bool block = false) {
  clean->assign(repl_clean_bytes(s.size()) + 1, 0);
  return parse_repl_line(s.data(), s.size(), clean->data(), clean->size(), block);
}

TEST(ParseReplLine, SystemCommandCarriesItsText) {
  std::vector<char> c;
  ReplInput r = parse("/system  Be brief. ", &c);
  EXPECT_EQ(r.kind, ReplInputKind::kSystem);
  EXPECT_EQ(std::string(r.text, r.len), "Be brief.");
  r = parse("/system", &c);
  EXPECT_EQ(r.kind, ReplInputKind::kSystem);
  EXPECT_EQ(r.len, 0u);
  EXPECT_EQ(parse("/systemic", &c).kind, ReplInputKind::kUnknownCommand);
  EXPECT_EQ(parse("/stats", &c).kind, ReplInputKind::kStats);
}

TEST(ParseReplLine, BlockIsAlwaysAMessage) {
  std::vector<char> c;
  ReplInput r = parse("\n/quit\n", &c, true);
  EXPECT_EQ(r.kind, ReplInputKind::kMessage);
  EXPECT_EQ(std::string(r.text, r.len), "/quit");
  EXPECT_EQ(parse("\n \n", &c, true).kind, ReplInputKind::kEmpty);
}

TEST(ParseReplLine, InvalidUtf8IsCounted) {
  std::vector<char> c;
  ReplInput r = parse("ok \xff\xfe \xc3 \xef\xbf\xbd", &c);
  EXPECT_EQ(r.kind, ReplInputKind::kMessage);
  EXPECT_EQ(r.replaced, 3u) << "a U+FFFD typed as such is not a replacement";
  EXPECT_EQ(parse("fine", &c).replaced, 0u);
}

}  // namespace
}  // namespace tern::cli
