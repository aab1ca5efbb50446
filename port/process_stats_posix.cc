#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>

#include "port/process_stats.h"

namespace tern {

unsigned online_cpu_count() {
  // The affinity mask, not the machine's count: under taskset or a container
  // CPU set, the CPUs this process can actually use.
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return unsigned(n);
  }
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? unsigned(n) : 1u;
}

size_t peak_rss_bytes() {
  rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return size_t(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

namespace {
// /proc/self/statm: "size resident shared text lib data dt", in pages. Read
// with a stack buffer (no allocation: this runs in the zero-heap phase).
bool read_statm(unsigned long* resident, unsigned long* shared) {
  const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[128];
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  char* p = buf;
  std::strtoul(p, &p, 10);  // skip total size
  *resident = std::strtoul(p, &p, 10);
  *shared = std::strtoul(p, &p, 10);
  return true;
}
}  // namespace

size_t current_rss_bytes() {
  unsigned long resident = 0, shared = 0;
  if (!read_statm(&resident, &shared)) return 0;
  return size_t(resident) * size_t(sysconf(_SC_PAGESIZE));
}

size_t current_anon_rss_bytes() {
  unsigned long resident = 0, shared = 0;
  if (!read_statm(&resident, &shared) || shared > resident) return 0;
  return size_t(resident - shared) * size_t(sysconf(_SC_PAGESIZE));
}

}  // namespace tern
