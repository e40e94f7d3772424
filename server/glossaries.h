#ifndef VOX_SERVER_GLOSSARIES_H_
#define VOX_SERVER_GLOSSARIES_H_

// Server glossaries for Translate: one file per language pair, read once at start-up from
// server.glossary_dir (docs/operations.md, "Glossaries"). A file is named SRC-TGT.tsv (NLLB
// codes, e.g. eng_Latn-fra_Latn.tsv) and holds one term per line, UTF-8:
//   source term<TAB>target term     the source term must become the target term
//   source term                      do not translate (a line without a tab)
// Blank lines and lines starting with '#' are skipped; a source term listed twice in one file is
// an error, as are other files in the directory.
//
// Immutable once loaded; thread-safe.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/text/protected_terms.h"

namespace vox {

class Glossaries {
 public:
  Glossaries() = default;  // no glossaries

  // Reads every SRC-TGT.tsv in `dir`. INVALID_ARGUMENT names the file and line of a bad entry;
  // NOT_FOUND when `dir` cannot be read.
  static absl::StatusOr<Glossaries> LoadDirectory(const std::string& dir);

  // One file's text; `name` is used in messages.
  static absl::StatusOr<std::vector<ProtectedTerm>> Parse(const std::string& text,
                                                          const std::string& name);

  // The terms for a language pair (empty when there is no file for it).
  const std::vector<ProtectedTerm>& Terms(const std::string& source,
                                          const std::string& target) const;

  // Language pairs with a glossary, and their term counts (for the start-up log line).
  size_t pair_count() const { return by_pair_.size(); }

 private:
  std::map<std::pair<std::string, std::string>, std::vector<ProtectedTerm>> by_pair_;
};

}  // namespace vox

#endif  // VOX_SERVER_GLOSSARIES_H_
