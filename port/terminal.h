// The terminal, for the interactive REPL: whether a descriptor is one, raw
// mode for line editing (entered and left around each line read), its width,
// and a SIGINT flag so Ctrl-C can stop a reply without killing the process.
#pragma once
#include <cstddef>

namespace tern::port {

// True if fd is a terminal.
bool is_terminal(int fd);

// Put terminal fd in raw mode: no echo, no line buffering (so no 4,095-byte
// line limit: input waits in the terminal until read), one byte at a time.
// signals == false: Ctrl-C arrives as byte 3 (line editing); true: Ctrl-C
// raises SIGINT (while a reply streams). The first call saves the original
// mode, which terminal_restore() puts back (also at exit). False if fd is not
// a terminal or the mode cannot be set. Keys typed ahead are kept.
bool terminal_raw(int fd, bool signals);
// Back to the mode saved by terminal_raw(); no-op if it was never called.
void terminal_restore();

// Columns of terminal fd; 80 if unknown.
unsigned terminal_columns(int fd);

// Read up to cap bytes from fd (retrying on EINTR). Returns the count, 0 at
// end of input, -1 on error.
long read_bytes(int fd, char* buf, size_t cap);
// Write all of buf to fd (retrying on EINTR and short writes).
bool write_bytes(int fd, const char* buf, size_t n);

// SIGINT handling: the first SIGINT sets a flag (the REPL stops the reply);
// a second one while the flag is still set restores the terminal and ends
// the process as SIGINT normally would (a reply stuck in prefill, a blocked
// read of a pipe). install_interrupt_handler() is idempotent.
bool install_interrupt_handler();
bool interrupted();
void clear_interrupt();

}  // namespace tern::port
