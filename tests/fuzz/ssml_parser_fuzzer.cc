// libFuzzer target for the SSML parser and say-as expansion (scripts/fuzz builds and runs it;
// not part of the CMake build). Besides crashes and sanitizer reports it aborts when a result
// breaks the parser's contract (engines/text/ssml_parser.h).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engines/text/ssml_parser.h"
#include "engines/text/ssml_say_as.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view doc(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<vox::SsmlSegment>> segments = vox::ParseSsml(doc);
  if (!segments.ok()) {
    if (segments.status().code() != absl::StatusCode::kInvalidArgument ||
        segments.status().message().find(" at byte ") == std::string_view::npos) {
      std::abort();
    }
    return 0;
  }
  for (const vox::SsmlSegment& s : *segments) {
    if (s.kind == vox::SsmlSegment::Kind::kBreak) {
      if (s.pause_ms <= 0 || s.pause_ms > 10000) std::abort();
      continue;
    }
    if (s.text.empty() || s.text.front() == ' ' || s.text.back() == ' ' || !(s.rate > 0)) {
      std::abort();
    }
    (void)vox::ExpandSayAs(s, "eng_Latn");
    (void)vox::ExpandSayAs(s, "spa_Latn");
  }
  return 0;
}
