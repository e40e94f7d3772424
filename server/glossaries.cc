#include "server/glossaries.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engines/text/unicode.h"

namespace vox {
namespace {

// "eng_Latn": three lowercase letters, '_', an uppercase letter and three lowercase ones.
bool LooksLikeNllbCode(std::string_view s) {
  if (s.size() != 8 || s[3] != '_') return false;
  for (size_t i = 0; i < 3; ++i) {
    if (s[i] < 'a' || s[i] > 'z') return false;
  }
  if (s[4] < 'A' || s[4] > 'Z') return false;
  for (size_t i = 5; i < 8; ++i) {
    if (s[i] < 'a' || s[i] > 'z') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<ProtectedTerm>> Glossaries::Parse(const std::string& text,
                                                             const std::string& name) {
  std::vector<ProtectedTerm> terms;
  std::set<std::string> seen;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripSuffix(line, "\r");
    if (line.empty() || line[0] == '#') continue;
    const std::string where = absl::StrCat(name, ":", number, ": ");
    if (!unicode::DecodeUtf8(std::string_view(line.data(), line.size())).ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "not valid UTF-8"));
    }
    const std::vector<std::string> fields = absl::StrSplit(line, '\t');
    if (fields.size() > 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "more than two tab-separated fields (source<TAB>target)"));
    }
    ProtectedTerm term;
    term.source = fields[0];
    term.target = fields.size() == 2 ? fields[1] : fields[0];
    if (term.source.empty() || term.target.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "empty source or target term"));
    }
    if (absl::StripAsciiWhitespace(term.source) != term.source) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "source term '", term.source, "' starts or ends with whitespace"));
    }
    if (!seen.insert(term.source).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "source term '", term.source, "' is listed twice"));
    }
    terms.push_back(std::move(term));
  }
  return terms;
}

absl::StatusOr<Glossaries> Glossaries::LoadDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat("server.glossary_dir '", dir, "' cannot be read: ", ec.message()));
  }
  Glossaries out;
  for (const fs::directory_entry& entry : it) {
    const std::string file = entry.path().filename().string();
    const std::string path = entry.path().string();
    const std::vector<std::string> parts = absl::StrSplit(file, absl::MaxSplits('-', 1));
    const bool tsv = parts.size() == 2 && absl::EndsWith(parts[1], ".tsv");
    if (!entry.is_regular_file() || !tsv || !LooksLikeNllbCode(parts[0]) ||
        !LooksLikeNllbCode(parts[1].substr(0, parts[1].size() - 4))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "glossary '", path, "': names must be SRC-TGT.tsv with NLLB codes, e.g. "
          "eng_Latn-fra_Latn.tsv"));
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    if (!in.good() && !in.eof()) {
      return absl::NotFoundError(absl::StrCat("glossary '", path, "' cannot be read"));
    }
    absl::StatusOr<std::vector<ProtectedTerm>> terms = Parse(buffer.str(), path);
    if (!terms.ok()) return terms.status();
    out.by_pair_[{parts[0], parts[1].substr(0, parts[1].size() - 4)}] = std::move(*terms);
  }
  return out;
}

const std::vector<ProtectedTerm>& Glossaries::Terms(const std::string& source,
                                                    const std::string& target) const {
  static const auto* empty = new std::vector<ProtectedTerm>();
  auto it = by_pair_.find({source, target});
  return it == by_pair_.end() ? *empty : it->second;
}

}  // namespace vox
