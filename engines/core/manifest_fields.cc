#include "engines/core/manifest_fields.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "engines/core/status_macros.h"

namespace vox {

absl::Status ManifestFields::Error(const std::string& field, const std::string& problem) const {
  return absl::FailedPreconditionError(
      absl::StrCat(m_.manifest_path, ": field '", field, "' ", problem));
}

absl::Status ManifestFields::Bad(const std::string& field, const char* what,
                                 const nlohmann::json& got) const {
  return Error(field, absl::StrCat("must be ", what, ", got ", got.dump()));
}

absl::StatusOr<const nlohmann::json*> ManifestFields::Get(const std::string& dotted) const {
  const nlohmann::json* node = &m_.json;
  for (absl::string_view part : absl::StrSplit(dotted, '.')) {
    if (!node->is_object()) return Error(dotted, "missing");
    auto it = node->find(std::string(part));
    if (it == node->end()) return Error(dotted, "missing");
    node = &*it;
  }
  return node;
}

absl::StatusOr<int64_t> ManifestFields::Int(const std::string& dotted) const {
  VOX_ASSIGN_OR_RETURN(const nlohmann::json* j, Get(dotted));
  if (!j->is_number_integer()) return Bad(dotted, "an integer", *j);
  return j->get<int64_t>();
}

absl::StatusOr<int64_t> ManifestFields::PositiveInt(const std::string& dotted) const {
  VOX_ASSIGN_OR_RETURN(const nlohmann::json* j, Get(dotted));
  if (!j->is_number_integer() || j->get<int64_t>() <= 0) return Bad(dotted, "a positive integer", *j);
  return j->get<int64_t>();
}

absl::StatusOr<double> ManifestFields::Number(const std::string& dotted) const {
  VOX_ASSIGN_OR_RETURN(const nlohmann::json* j, Get(dotted));
  if (!j->is_number()) return Bad(dotted, "a number", *j);
  return j->get<double>();
}

absl::StatusOr<std::string> ManifestFields::String(const std::string& dotted) const {
  VOX_ASSIGN_OR_RETURN(const nlohmann::json* j, Get(dotted));
  if (!j->is_string()) return Bad(dotted, "a string", *j);
  return j->get<std::string>();
}

absl::StatusOr<const nlohmann::json*> ManifestFields::Array(const std::string& dotted) const {
  VOX_ASSIGN_OR_RETURN(const nlohmann::json* j, Get(dotted));
  if (!j->is_array()) return Bad(dotted, "an array", *j);
  return j;
}

absl::StatusOr<const nlohmann::json*> ManifestFields::Object(const std::string& dotted) const {
  VOX_ASSIGN_OR_RETURN(const nlohmann::json* j, Get(dotted));
  if (!j->is_object()) return Bad(dotted, "an object", *j);
  return j;
}

}  // namespace vox
