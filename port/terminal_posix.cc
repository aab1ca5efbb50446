#include "port/terminal.h"

#include <errno.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>

namespace tern::port {

namespace {

struct termios g_saved;
int g_saved_fd = -1;  // the terminal whose mode g_saved holds
bool g_raw = false;
volatile sig_atomic_t g_interrupted = 0;

void restore_at_exit() { terminal_restore(); }

void on_sigint(int sig) {
  if (g_interrupted) {
    // Second Ctrl-C before the first was handled: leave as SIGINT would.
    // tcsetattr is async-signal-safe.
    if (g_raw && g_saved_fd >= 0) tcsetattr(g_saved_fd, TCSAFLUSH, &g_saved);
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  g_interrupted = 1;
}

}  // namespace

bool is_terminal(int fd) { return isatty(fd) == 1; }

bool terminal_raw(int fd, bool signals) {
  if (!is_terminal(fd)) return false;
  if (g_saved_fd < 0) {
    if (tcgetattr(fd, &g_saved) != 0) return false;
    g_saved_fd = fd;
    std::atexit(restore_at_exit);
  }
  struct termios raw = g_saved;
  // As linenoise: no break-to-SIGINT, no CR-to-NL, no parity, no 8th-bit strip,
  // no flow control (Ctrl-S/Ctrl-Q reach the editor); 8-bit characters; no
  // echo, no canonical lines, no Ctrl-V, no signal keys. Output processing
  // stays on, so "\n" still moves to the start of the next line.
  raw.c_iflag &= tcflag_t(~(BRKINT | ICRNL | INPCK | ISTRIP | IXON));
  raw.c_cflag |= CS8;
  raw.c_lflag &= tcflag_t(~(ECHO | ICANON | IEXTEN | ISIG));
  if (signals) raw.c_lflag |= ISIG;
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  // TCSADRAIN, not TCSAFLUSH: keys typed ahead while a reply streamed are kept.
  if (tcsetattr(fd, TCSADRAIN, &raw) != 0) return false;
  g_raw = true;
  return true;
}

void terminal_restore() {
  if (!g_raw || g_saved_fd < 0) return;
  tcsetattr(g_saved_fd, TCSADRAIN, &g_saved);
  g_raw = false;
}

unsigned terminal_columns(int fd) {
  struct winsize ws;
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

long read_bytes(int fd, char* buf, size_t cap) {
  for (;;) {
    const ssize_t n = read(fd, buf, cap);
    if (n >= 0) return long(n);
    if (errno != EINTR) return -1;
  }
}

bool write_bytes(int fd, const char* buf, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    buf += w;
    n -= size_t(w);
  }
  return true;
}

bool install_interrupt_handler() {
  struct sigaction sa;
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a blocked read goes on; the flag is checked per token
  return sigaction(SIGINT, &sa, nullptr) == 0;
}

bool interrupted() { return g_interrupted != 0; }
void clear_interrupt() { g_interrupted = 0; }

}  // namespace tern::port
