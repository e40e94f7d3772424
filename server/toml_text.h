#ifndef VOX_SERVER_TOML_TEXT_H_
#define VOX_SERVER_TOML_TEXT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "toml++/toml.h"

namespace vox {

// Parses TOML `text` read from `source` (a path, for messages): INVALID_ARGUMENT
// "source:line:column: what" when it is not TOML. The config and the token file both read
// through it. Thread-safe.
inline absl::StatusOr<toml::table> ParseTomlText(const std::string& text,
                                                 const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return absl::InvalidArgumentError(absl::StrCat(source, ":", where.line, ":", where.column,
                                                   ": ", std::string(e.description())));
  }
}

}  // namespace vox

#endif  // VOX_SERVER_TOML_TEXT_H_
