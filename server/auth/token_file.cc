#include "server/auth/token_file.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <fstream>
#include <set>
#include <sstream>

#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "server/toml_text.h"

namespace vox {
namespace {

absl::Status Bad(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::StatusOr<Sha256> ParseHex(const std::string& where, const std::string& hex) {
  Sha256 out{};
  bool ok = hex.size() == 64;
  for (size_t i = 0; ok && i < 32; ++i) {
    int v = 0;
    for (int j = 0; j < 2; ++j) {
      const char c = hex[2 * i + j];
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0) ok = false;
      v = v * 16 + d;
    }
    out[i] = static_cast<uint8_t>(v);
  }
  if (!ok) {
    return Bad(where, "'sha256' must be 64 hex digits, the SHA-256 of the token "
                      "(printf %s \"$TOKEN\" | sha256sum)");
  }
  return out;
}

absl::Status ParseToken(const toml::table& t, const std::string& where,
                        const std::vector<std::string>& services, TokenPolicy* p) {
  static const std::set<std::string> kKeys = {"name", "sha256", "services", "expires",
                                              "requests_per_second", "concurrent_streams",
                                              "characters_per_day"};
  for (const auto& [k, _] : t) {
    if (kKeys.count(std::string(k.str())) == 0) {
      return Bad(where, absl::StrCat("unknown key '", std::string(k.str()),
                                     "' (allowed: ", absl::StrJoin(kKeys, ", "), ")"));
    }
  }
  const std::optional<std::string> name = t["name"].value<std::string>();
  if (!name || name->empty()) return Bad(where, "'name' (a non-empty string) is required");
  for (const char c : *name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return Bad(where, "'name' may hold only letters, digits, '-', '_' and '.'");
    }
  }
  p->name = *name;
  const std::string at = absl::StrCat(where, " ('", *name, "')");
  const std::optional<std::string> hex = t["sha256"].value<std::string>();
  if (!hex) return Bad(at, "'sha256' (a string) is required");
  absl::StatusOr<Sha256> hash = ParseHex(at, *hex);
  if (!hash.ok()) return hash.status();
  p->sha256 = *hash;
  const toml::array* list = t["services"].as_array();
  if (list == nullptr || list->empty()) {
    return Bad(at, absl::StrCat("'services' (a non-empty array) is required: \"*\" or some of ",
                                absl::StrJoin(services, ", ")));
  }
  for (const toml::node& e : *list) {
    const std::optional<std::string> s = e.value<std::string>();
    if (!s || (*s != "*" && std::find(services.begin(), services.end(), *s) == services.end())) {
      return Bad(at, absl::StrCat("unknown service ", s ? "'" + *s + "'" : "(not a string)",
                                  " in 'services' (allowed: \"*\", ", absl::StrJoin(services, ", "),
                                  ")"));
    }
    p->services.push_back(*s);
  }
  if (const toml::node* n = t.get("expires")) {
    std::string error;
    absl::Time when;
    const std::optional<std::string> text = n->value<std::string>();
    if (!text || !absl::ParseTime(absl::RFC3339_full, *text, &when, &error)) {
      return Bad(at, "'expires' must be an RFC 3339 time string, e.g. \"2027-01-31T00:00:00Z\"");
    }
    p->expires = when;
  }
  if (const toml::node* n = t.get("requests_per_second")) {
    const std::optional<double> v = n->value<double>();
    if (!v || *v < 0) return Bad(at, "'requests_per_second' must be a number >= 0");
    p->requests_per_second = *v;
  }
  if (const toml::node* n = t.get("concurrent_streams")) {
    const std::optional<int64_t> v = n->value<int64_t>();
    if (!v || *v < 0 || *v > (1 << 30)) {
      return Bad(at, "'concurrent_streams' must be an integer >= 0");
    }
    p->concurrent_streams = static_cast<int>(*v);
  }
  if (const toml::node* n = t.get("characters_per_day")) {
    const std::optional<int64_t> v = n->value<int64_t>();
    if (!v || *v < 0) return Bad(at, "'characters_per_day' must be an integer >= 0");
    p->characters_per_day = *v;
  }
  return absl::OkStatus();
}

}  // namespace

bool TokenPolicy::Allows(absl::string_view service) const {
  for (const std::string& s : services) {
    if (s == "*" || s == service) return true;
  }
  return false;
}

absl::StatusOr<std::vector<TokenPolicy>> ParseTokenFile(const std::string& text,
                                                        const std::string& source,
                                                        const std::vector<std::string>& services) {
  absl::StatusOr<toml::table> parsed = ParseTomlText(text, source);
  if (!parsed.ok()) return parsed.status();
  const toml::table& table = *parsed;
  for (const auto& [k, _] : table) {
    if (k.str() != "token") {
      return Bad(source, absl::StrCat("unknown key '", std::string(k.str()),
                                      "' (a token file holds [[token]] tables)"));
    }
  }
  std::vector<TokenPolicy> tokens;
  if (const toml::node* n = table.get("token")) {
    const toml::array* array = n->as_array();
    if (array == nullptr) return Bad(source, "'token' must be an array of tables ([[token]])");
    for (size_t i = 0; i < array->size(); ++i) {
      const std::string where = absl::StrCat(source, ": token ", i + 1);
      const toml::table* t = (*array)[i].as_table();
      if (t == nullptr) return Bad(where, "must be a table ([[token]])");
      TokenPolicy p;
      if (absl::Status s = ParseToken(*t, where, services, &p); !s.ok()) return s;
      for (const TokenPolicy& other : tokens) {
        if (other.name == p.name) {
          return Bad(where, absl::StrCat("name '", p.name, "' is used twice"));
        }
        if (other.sha256 == p.sha256) {
          return Bad(where,
                     absl::StrCat("'", p.name, "' has the same sha256 as '", other.name, "'"));
        }
      }
      tokens.push_back(std::move(p));
    }
  }
  return tokens;
}

absl::StatusOr<std::vector<TokenPolicy>> LoadTokenFile(const std::string& path,
                                                       const std::vector<std::string>& services) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read token file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseTokenFile(buffer.str(), path, services);
}

Sha256 Sha256Of(absl::string_view data) {
  Sha256 out{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

std::string Sha256Hex(absl::string_view data) {
  const Sha256 h = Sha256Of(data);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

}  // namespace vox
