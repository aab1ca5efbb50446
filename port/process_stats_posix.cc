#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>

#include "port/process_stats.h"

namespace tern {

size_t peak_rss_bytes() {
  rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return size_t(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

size_t current_rss_bytes() {
  // /proc/self/statm: size resident shared ... (in pages); read with a stack buffer.
  const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char* p = buf;
  std::strtoul(p, &p, 10);  // skip total size
  const unsigned long resident = std::strtoul(p, &p, 10);
  return size_t(resident) * size_t(sysconf(_SC_PAGESIZE));
}

}  // namespace tern
