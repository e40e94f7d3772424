#ifndef VOX_TESTS_METRICS_SCRAPE_H_
#define VOX_TESTS_METRICS_SCRAPE_H_

// Test helpers that read a Prometheus endpoint the way a scraper does: a plain HTTP/1.0 GET over
// loopback and a parser of the exposition text that does not use prometheus-cpp.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace vox::testing {

// GET http://127.0.0.1:port/path; returns the whole response (status line, headers, body).
inline std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "socket failed";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "connect failed";
  }
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return "write failed";
  }
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) response.append(buf, n);
  close(fd);
  return response;
}

// The body of an HTTP response ("" when there is none).
inline std::string Body(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

// The value of the sample `name` whose labels include every `label="value"` in `labels`
// (NaN when absent).
inline double Sample(const std::string& text, const std::string& name,
                     const std::vector<std::string>& labels = {}) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t end_name = line.find_first_of("{ ");
    if (end_name == absl::string_view::npos || line.substr(0, end_name) != name) continue;
    bool all = true;
    for (const std::string& l : labels) all = all && absl::StrContains(line, l);
    if (!all) continue;
    double v;
    const size_t space = line.rfind(' ');
    if (absl::SimpleAtod(line.substr(space + 1), &v)) return v;
  }
  return std::nan("");
}

}  // namespace vox::testing

#endif  // VOX_TESTS_METRICS_SCRAPE_H_
