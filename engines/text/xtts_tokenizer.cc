#include "engines/text/xtts_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "engines/text/text_cleaner.h"
#include "engines/text/unicode.h"
#include "nlohmann/json.hpp"

namespace vox {

namespace {

using unicode::AppendUtf8;
using unicode::DecodeUtf8;

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct AddedToken {
  std::u32string content;
  int64_t id;
};

// One BPE symbol, as in tokenizers' models/bpe/word.rs.
struct Symbol {
  int32_t c;
  int32_t prev;
  int32_t next;
  size_t len;  // bytes; 0 = merged away
};

// Heap entry; the top is the lowest rank, then the lowest position (word.rs `impl Ord for Merge`).
struct MergeEntry {
  int32_t pos;
  int32_t rank;
  int32_t new_id;
};
struct MergeAfter {
  bool operator()(const MergeEntry& a, const MergeEntry& b) const {
    if (a.rank != b.rank) return a.rank > b.rank;
    return a.pos > b.pos;
  }
};

}  // namespace

struct XttsTokenizer::Impl {
  std::unordered_map<std::string, int64_t> vocab;  // model.vocab plus added tokens
  size_t model_vocab_size = 0;
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;  // pair → (rank, new id)
  std::vector<AddedToken> added_raw;         // "normalized": false (matched on the raw text)
  std::vector<AddedToken> added_normalized;  // "normalized": true (second pass)
  int64_t unk_id = -1;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  bool whitespace_pretokenizer = true;
  std::u32string first_chars;  // first code points of all added tokens (a fast pre-check)

  int64_t Lookup(const std::string& s) const {
    auto it = vocab.find(s);
    return it == vocab.end() ? -1 : it->second;
  }

  void MergeWord(std::u32string_view word, std::vector<int64_t>* ids) const;
  void EncodeSegment(std::u32string_view text, std::vector<int64_t>* ids) const;
  void SplitAdded(std::u32string_view text, const std::vector<AddedToken>& tokens,
                  std::vector<std::pair<std::u32string_view, int64_t>>* out) const;
};

void XttsTokenizer::Impl::MergeWord(std::u32string_view word, std::vector<int64_t>* ids) const {
  if (word.empty()) return;
  std::string utf8;
  if (ignore_merges) {
    for (char32_t c : word) AppendUtf8(c, &utf8);
    const int64_t id = Lookup(utf8);
    if (id >= 0) {
      ids->push_back(id);
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&symbols](int64_t id, size_t len) {
    const int32_t n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back(Symbol{static_cast<int32_t>(id), n - 1, -1, len});
  };
  // (id, byte length) of a pending [UNK] when fuse_unk is on; tokenizers' `unk` variable.
  int64_t pending_unk = -1;
  size_t pending_unk_len = 0;
  for (char32_t c : word) {
    utf8.clear();
    AppendUtf8(c, &utf8);
    const int64_t id = Lookup(utf8);
    if (id >= 0) {
      if (pending_unk >= 0) {
        add(pending_unk, pending_unk_len);
        pending_unk = -1;
      }
      add(id, utf8.size());
      continue;
    }
    if (byte_fallback) {
      std::vector<int64_t> bytes;
      for (unsigned char b : utf8) {
        const int64_t bid = Lookup(absl::StrFormat("<0x%02X>", b));
        if (bid < 0) break;
        bytes.push_back(bid);
      }
      if (bytes.size() == utf8.size()) {
        if (pending_unk >= 0) {
          add(pending_unk, pending_unk_len);
          pending_unk = -1;
        }
        for (int64_t bid : bytes) add(bid, 1);
        continue;
      }
    }
    if (unk_id < 0) continue;  // no unk token: the character is dropped (as tokenizers does)
    if (pending_unk >= 0 && fuse_unk) {
      pending_unk_len += utf8.size();
    } else {
      if (pending_unk >= 0) add(pending_unk, pending_unk_len);
      pending_unk = unk_id;
      pending_unk_len = utf8.size();
    }
  }
  if (pending_unk >= 0) add(pending_unk, pending_unk_len);

  // word.rs merge_all (no dropout).
  std::priority_queue<MergeEntry, std::vector<MergeEntry>, MergeAfter> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    auto it = merges.find(PairKey(symbols[i].c, symbols[i + 1].c));
    if (it != merges.end()) {
      queue.push(MergeEntry{static_cast<int32_t>(i), it->second.first, it->second.second});
    }
  }
  const int32_t n = static_cast<int32_t>(symbols.size());
  while (!queue.empty()) {
    const MergeEntry top = queue.top();
    queue.pop();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const int32_t next_pos = cur.next;
    const Symbol right = symbols[next_pos];
    auto it = merges.find(PairKey(cur.c, right.c));
    if (it == merges.end() || it->second.second != top.new_id) continue;  // stale entry
    cur.c = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next > -1 && right.next < n) symbols[right.next].prev = top.pos;
    if (cur.prev >= 0) {
      auto p = merges.find(PairKey(symbols[cur.prev].c, cur.c));
      if (p != merges.end()) queue.push(MergeEntry{cur.prev, p->second.first, p->second.second});
    }
    if (cur.next > -1 && cur.next < n) {
      auto q = merges.find(PairKey(cur.c, symbols[cur.next].c));
      if (q != merges.end()) queue.push(MergeEntry{top.pos, q->second.first, q->second.second});
    }
  }
  for (const Symbol& s : symbols) {
    if (s.len != 0) ids->push_back(s.c);
  }
}

void XttsTokenizer::Impl::EncodeSegment(std::u32string_view text, std::vector<int64_t>* ids) const {
  if (!whitespace_pretokenizer) {
    MergeWord(text, ids);
    return;
  }
  // Matches of `\w+|[^\w\s]+` (Rust regex, Unicode classes); everything else is dropped.
  size_t i = 0;
  while (i < text.size()) {
    const char32_t c = text[i];
    if (unicode::IsRustWord(c)) {
      size_t j = i + 1;
      while (j < text.size() && unicode::IsRustWord(text[j])) ++j;
      MergeWord(text.substr(i, j - i), ids);
      i = j;
    } else if (!unicode::IsRustSpace(c)) {
      size_t j = i + 1;
      while (j < text.size() && !unicode::IsRustWord(text[j]) && !unicode::IsRustSpace(text[j])) {
        ++j;
      }
      MergeWord(text.substr(i, j - i), ids);
      i = j;
    } else {
      ++i;
    }
  }
}

// Cuts `tokens` out of `text`, leftmost-longest and non-overlapping (AhoCorasick LeftmostLongest
// in tokenizers' added_vocabulary.rs). Output: (piece, id) with id = -1 for text between tokens.
void XttsTokenizer::Impl::SplitAdded(
    std::u32string_view text, const std::vector<AddedToken>& tokens,
    std::vector<std::pair<std::u32string_view, int64_t>>* out) const {
  if (tokens.empty()) {
    if (!text.empty()) out->emplace_back(text, -1);
    return;
  }
  size_t start = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (first_chars.find(text[i]) == std::u32string::npos) {
      ++i;
      continue;
    }
    const AddedToken* best = nullptr;
    for (const AddedToken& t : tokens) {
      if (t.content.empty() || t.content.size() > text.size() - i) continue;
      if (best != nullptr && t.content.size() <= best->content.size()) continue;
      if (text.compare(i, t.content.size(), t.content) == 0) best = &t;
    }
    if (best == nullptr) {
      ++i;
      continue;
    }
    if (i > start) out->emplace_back(text.substr(start, i - start), -1);
    out->emplace_back(text.substr(i, best->content.size()), best->id);
    i += best->content.size();
    start = i;
  }
  if (start < text.size()) out->emplace_back(text.substr(start), -1);
}

XttsTokenizer::XttsTokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
XttsTokenizer::~XttsTokenizer() = default;

absl::StatusOr<XttsTokenizer> XttsTokenizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open XTTS vocab file '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto tok = FromJson(buffer.str());
  if (!tok.ok()) {
    return absl::Status(tok.status().code(), absl::StrCat(path, ": ", tok.status().message()));
  }
  return tok;
}

absl::StatusOr<XttsTokenizer> XttsTokenizer::FromJson(std::string_view json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("not a JSON object (expected an HF tokenizers file)");
  }
  auto impl = std::make_shared<Impl>();
  try {
    for (const char* field : {"normalizer", "post_processor"}) {
      if (j.contains(field) && !j[field].is_null()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "field '", field, "' must be null for an XTTS vocab (got ", j[field].dump(), ")"));
      }
    }
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
      const auto& pt = j["pre_tokenizer"];
      if (!pt.is_object() || pt.value("type", "") != "Whitespace") {
        return absl::InvalidArgumentError(
            absl::StrCat("field 'pre_tokenizer' must be {\"type\": \"Whitespace\"} or null (got ",
                         pt.dump(), ")"));
      }
    } else {
      impl->whitespace_pretokenizer = false;
    }
    if (!j.contains("model") || !j["model"].is_object()) {
      return absl::InvalidArgumentError("missing object field 'model'");
    }
    const auto& model = j["model"];
    if (model.contains("type") && model["type"] != "BPE") {
      return absl::InvalidArgumentError(
          absl::StrCat("field 'model.type' must be \"BPE\" (got ", model["type"].dump(), ")"));
    }
    for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (model.contains(field) && !model[field].is_null() &&
          !model[field].get<std::string>().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("field 'model.", field, "' is not supported (got ", model[field].dump(),
                         "); XTTS vocabularies have none"));
      }
    }
    if (model.contains("dropout") && !model["dropout"].is_null()) {
      return absl::InvalidArgumentError("field 'model.dropout' must be null (inference is exact)");
    }
    if (!model.contains("vocab") || !model["vocab"].is_object()) {
      return absl::InvalidArgumentError("missing object field 'model.vocab'");
    }
    for (const auto& [token, id] : model["vocab"].items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
        return absl::InvalidArgumentError(
            absl::StrCat("model.vocab['", token, "'] is not a non-negative 32-bit id"));
      }
      impl->vocab[token] = id.get<int64_t>();
    }
    impl->model_vocab_size = impl->vocab.size();
    impl->fuse_unk = model.value("fuse_unk", false);
    impl->byte_fallback = model.value("byte_fallback", false);
    impl->ignore_merges = model.value("ignore_merges", false);

    if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
      for (const auto& t : j["added_tokens"]) {
        const std::string content = t.at("content").get<std::string>();
        const int64_t id = t.at("id").get<int64_t>();
        auto decoded = DecodeUtf8(content);
        if (!decoded.ok()) return decoded.status();
        if (t.value("single_word", false) || t.value("lstrip", false) || t.value("rstrip", false)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "added token '", content, "': single_word/lstrip/rstrip are not supported"));
        }
        (t.value("normalized", false) ? impl->added_normalized : impl->added_raw)
            .push_back(AddedToken{*decoded, id});
        if (!decoded->empty() && impl->first_chars.find((*decoded)[0]) == std::u32string::npos) {
          impl->first_chars.push_back((*decoded)[0]);
        }
        impl->vocab[content] = id;
      }
    }

    if (model.contains("unk_token") && !model["unk_token"].is_null()) {
      const std::string unk = model["unk_token"].get<std::string>();
      impl->unk_id = impl->Lookup(unk);
      if (impl->unk_id < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("model.unk_token '", unk, "' is not in model.vocab"));
      }
    }

    if (!model.contains("merges") || !model["merges"].is_array()) {
      return absl::InvalidArgumentError("missing array field 'model.merges'");
    }
    int32_t rank = 0;
    for (const auto& m : model["merges"]) {
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
          return absl::InvalidArgumentError(absl::StrCat(
              "model.merges[", rank, "] = '", s, "' is not two tokens separated by one space"));
        }
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("model.merges[", rank, "] must be \"a b\" or [a, b]"));
      }
      const int64_t a_id = impl->Lookup(a), b_id = impl->Lookup(b), n_id = impl->Lookup(a + b);
      for (const auto& [tok, id] : {std::pair{a, a_id}, {b, b_id}, {a + b, n_id}}) {
        if (id < 0) {
          return absl::InvalidArgumentError(absl::StrCat("model.merges[", rank, "] ('", a, " ", b,
                                                         "'): token '", tok,
                                                         "' is not in model.vocab"));
        }
      }
      // Later duplicates overwrite earlier ones, as tokenizers' HashMap collect does.
      impl->merges[PairKey(static_cast<int32_t>(a_id), static_cast<int32_t>(b_id))] = {
          rank, static_cast<int32_t>(n_id)};
      ++rank;
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed tokenizer JSON: ", e.what()));
  }
  return XttsTokenizer(std::move(impl));
}

absl::StatusOr<std::vector<int64_t>> XttsTokenizer::EncodeRaw(std::string_view prepared) const {
  auto text = DecodeUtf8(prepared);
  if (!text.ok()) return text.status();
  std::vector<std::pair<std::u32string_view, int64_t>> first;
  impl_->SplitAdded(*text, impl_->added_raw, &first);
  std::vector<int64_t> ids;
  std::vector<std::pair<std::u32string_view, int64_t>> second;
  for (const auto& [piece, id] : first) {
    if (id >= 0) {
      ids.push_back(id);
      continue;
    }
    second.clear();
    impl_->SplitAdded(piece, impl_->added_normalized, &second);
    for (const auto& [sub, sub_id] : second) {
      if (sub_id >= 0) {
        ids.push_back(sub_id);
      } else {
        impl_->EncodeSegment(sub, &ids);
      }
    }
  }
  return ids;
}

std::string XttsLanguageToken(std::string_view xtts_lang) {
  if (xtts_lang == "zh" || xtts_lang == "zh-cn") return "[zh-cn]";
  return absl::StrCat("[", std::string(xtts_lang), "]");
}

absl::StatusOr<std::string> XttsTokenizer::Prepare(std::string_view text,
                                                   std::string_view xtts_lang) const {
  auto cleaned = CleanText(text, xtts_lang);
  if (!cleaned.ok()) return cleaned.status();
  const std::string lang_token = XttsLanguageToken(xtts_lang);
  if (TokenId(lang_token) < 0) {
    return absl::InvalidArgumentError(absl::StrCat("language '", std::string(xtts_lang),
                                                   "': the XTTS vocab has no token ", lang_token));
  }
  return absl::StrCat(lang_token, absl::StrReplaceAll(*cleaned, {{" ", "[SPACE]"}}));
}

absl::StatusOr<std::vector<int64_t>> XttsTokenizer::Encode(std::string_view text,
                                                           std::string_view xtts_lang) const {
  auto prepared = Prepare(text, xtts_lang);
  if (!prepared.ok()) return prepared.status();
  return EncodeRaw(*prepared);
}

int64_t XttsTokenizer::TokenId(std::string_view token) const {
  return impl_->Lookup(std::string(token));
}
size_t XttsTokenizer::VocabSize() const { return impl_->model_vocab_size; }
int64_t XttsTokenizer::unk_id() const { return impl_->unk_id; }
int64_t XttsTokenizer::space_id() const { return TokenId("[SPACE]"); }

// ---------------------------------------------------------------------------------------------
// Sentence splitting.

namespace {

bool IsSentenceEnd(char32_t c) {
  switch (c) {
    case '.':
    case '!':
    case '?':
    case ';':
    case 0x2026:  // …
    case 0x3002:
    case 0xFF01:
    case 0xFF1F:
    case 0xFF1B:  // 。！？；
    case 0x061F:
    case 0x0964:  // Arabic ?, Devanagari danda
      return true;
    default:
      return false;
  }
}
bool IsCloser(char32_t c) {
  switch (c) {
    case '"':
    case '\'':
    case ')':
    case ']':
    case '}':
    case 0xBB:
    case 0x201D:
    case 0x2019:
      return true;
    default:
      return false;
  }
}

// Byte offsets just after each sentence (end punctuation run, closers, then whitespace or end).
// True when the single '.' at t[i] ends an abbreviation ("Mr.", "Sra.", "etc.") or an initial
// ("J."), which does not end a sentence.
bool IsAbbreviationDot(std::u32string_view t, size_t i) {
  static const auto* words = new std::vector<std::u32string>{
      U"mr",  U"mrs", U"ms",     U"dr",   U"drs", U"st",  U"jr",   U"sr",   U"co",
      U"ltd", U"maj", U"gen",    U"rev",  U"lt",  U"hon", U"sgt",  U"capt", U"esq",
      U"col", U"ft",  U"prof",   U"vs",   U"etc", U"sra", U"srta", U"dra",  U"mme",
      U"fr",  U"sig", U"dhr",    U"mevr", U"jhr", U"ing", U"nr",   U"no",   U"p",
      U"e.g", U"i.e", U"approx", U"dept", U"inc", U"av",  U"avda", U"ud",   U"uds"};
  size_t b = i;
  while (b > 0 && (unicode::IsPyWord(t[b - 1]) ||
                   (t[b - 1] == '.' && b - 1 > 0 && unicode::IsPyWord(t[b - 2])))) {
    --b;
  }
  if (b == i) return false;
  const std::u32string word = unicode::PyLower(t.substr(b, i - b));
  if (word.size() == 1 && !unicode::IsPyDigit(word[0])) return true;  // an initial
  return std::find(words->begin(), words->end(), word) != words->end();
}

std::vector<size_t> SentenceEnds(std::u32string_view t) {
  std::vector<size_t> ends;
  size_t i = 0;
  while (i < t.size()) {
    if (!IsSentenceEnd(t[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < t.size() && IsSentenceEnd(t[j])) ++j;
    if (j == i + 1 && t[i] == '.' && IsAbbreviationDot(t, i)) {
      i = j;
      continue;
    }
    while (j < t.size() && IsCloser(t[j])) ++j;
    if (j == t.size() || unicode::IsPySpace(t[j])) ends.push_back(j);
    i = j;
  }
  if (ends.empty() || ends.back() != t.size()) ends.push_back(t.size());
  return ends;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitForXtts(const XttsTokenizer& tokenizer,
                                                      std::string_view text,
                                                      std::string_view xtts_lang, size_t max_ids) {
  auto decoded = DecodeUtf8(text);
  if (!decoded.ok()) return decoded.status();
  const std::u32string t = std::move(*decoded);
  // Number of ids of t[b, e), or an error.
  auto count = [&](size_t b, size_t e) -> absl::StatusOr<size_t> {
    auto ids =
        tokenizer.Encode(unicode::EncodeUtf8(std::u32string_view(t).substr(b, e - b)), xtts_lang);
    if (!ids.ok()) return ids.status();
    return ids->size();
  };
  // Validate the language (and the vocab's language token) once, even for empty input.
  auto base = count(0, 0);
  if (!base.ok()) return base.status();
  if (max_ids <= *base + 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "max_ids %d is too small: the language token alone takes %d id(s)", max_ids, *base));
  }

  std::vector<std::string> pieces;
  auto emit = [&](size_t b, size_t e) -> absl::Status {
    std::u32string_view v = unicode::PyStrip(std::u32string_view(t).substr(b, e - b));
    if (v.empty()) return absl::OkStatus();
    auto ids = tokenizer.Encode(unicode::EncodeUtf8(v), xtts_lang);
    if (!ids.ok()) return ids.status();
    if (ids->size() > *base) pieces.push_back(unicode::EncodeUtf8(v));
    return absl::OkStatus();
  };
  auto fits = [&](size_t b, size_t e) -> absl::StatusOr<bool> {
    auto n = count(b, e);
    if (!n.ok()) return n.status();
    return *n < max_ids;
  };

  // Cuts an over-long span [b, e) into pieces that fit: at the last comma, else the last space,
  // else the last character boundary outside a number, else any character boundary, that keeps
  // the prefix under the limit.
  auto cut_long = [&](size_t b, size_t e) -> absl::Status {
    while (b < e) {
      size_t cut = 0;
      for (int level = 0; level < 4 && cut == 0; ++level) {
        std::vector<size_t> candidates;  // ascending cut positions of this kind, then e itself
        size_t first_text = b;           // a prefix [b, k) is blank unless k > first_text
        while (first_text < e && unicode::IsPySpace(t[first_text])) ++first_text;
        for (size_t k = first_text + 1; k < e; ++k) {
          bool boundary;
          if (level == 0) {
            boundary = (t[k - 1] == ',' || t[k - 1] == 0x3001 || t[k - 1] == 0xFF0C) &&
                       unicode::IsPySpace(t[k]);
          } else if (level == 1) {
            boundary = unicode::IsPySpace(t[k]) && !unicode::IsPySpace(t[k - 1]);
          } else if (level == 2) {  // between characters, but not inside a number
            boundary = !(unicode::IsPyDigit(t[k - 1]) && unicode::IsPyDigit(t[k])) &&
                       !(t[k - 1] == '.' || t[k - 1] == ',' || t[k - 1] == '$');
          } else {
            boundary = true;
          }
          if (boundary) candidates.push_back(k);
        }
        // The whole rest is tried last, at the first level that has any cut position.
        if (!candidates.empty() || level == 3) candidates.push_back(e);
        if (candidates.empty()) continue;
        // The id count grows (almost) monotonically with the prefix: gallop from the short end,
        // then binary-search the last candidate that fits. Costs O(log n) encodes of about one
        // piece each, however long the remaining span is.
        size_t good = candidates.size();  // index of the last candidate known to fit
        size_t bad = candidates.size();   // index of the first candidate known not to fit
        size_t probe = 0, step = 1;
        while (probe < candidates.size()) {
          auto ok = fits(b, candidates[probe]);
          if (!ok.ok()) return ok.status();
          if (!*ok) {
            bad = probe;
            break;
          }
          good = probe;
          probe += step;
          step *= 2;
        }
        if (good == candidates.size()) continue;  // not even the shortest prefix fits
        if (bad == candidates.size() && good + 1 < candidates.size()) bad = candidates.size();
        size_t lo = good + 1, hi = bad;  // search (good, bad)
        while (lo < hi) {
          const size_t mid = lo + (hi - lo) / 2;
          auto ok = fits(b, candidates[mid]);
          if (!ok.ok()) return ok.status();
          if (*ok) {
            good = mid;
            lo = mid + 1;
          } else {
            hi = mid;
          }
        }
        cut = candidates[good];
      }
      if (cut == 0) {
        std::string ch;
        unicode::AppendUtf8(t[b], &ch);
        return absl::InvalidArgumentError(absl::StrFormat(
            "max_ids %d is too small: '%s' alone encodes to %d or more ids", max_ids, ch, max_ids));
      }
      absl::Status s = emit(b, cut);
      if (!s.ok()) return s;
      b = cut;
      while (b < e && unicode::IsPySpace(t[b])) ++b;
    }
    return absl::OkStatus();
  };

  // Each sentence is encoded once. BPE never merges across a space ([SPACE] is an added token)
  // and the cleaners act within sentences, so a run of sentences i..j takes about
  // base + sum(count) + (j - i) ids (one [SPACE] per join): that estimate picks the run, and
  // exact encodes of the run confirm it (shrinking or growing it by whole sentences), so each
  // piece costs a couple of encodes however many sentences it packs.
  const std::vector<size_t> ends = SentenceEnds(t);
  std::vector<size_t> begins(ends.size());
  std::vector<size_t> counts(ends.size());  // ids beyond the language token
  for (size_t i = 0; i < ends.size(); ++i) {
    begins[i] = i == 0 ? 0 : ends[i - 1];
    auto n = count(begins[i], ends[i]);
    if (!n.ok()) return n.status();
    counts[i] = *n > *base ? *n - *base : 0;
  }
  size_t i = 0;
  while (i < ends.size()) {
    if (*base + counts[i] >= max_ids) {  // exact for a single sentence
      absl::Status s = cut_long(begins[i], ends[i]);
      if (!s.ok()) return s;
      ++i;
      continue;
    }
    size_t j = i;
    size_t estimate = *base + counts[i];
    while (j + 1 < ends.size() && estimate + 1 + counts[j + 1] < max_ids) {
      ++j;
      estimate += 1 + counts[j];
    }
    while (j > i) {  // shrink while the exact count disagrees
      auto ok = fits(begins[i], ends[j]);
      if (!ok.ok()) return ok.status();
      if (*ok) break;
      --j;
    }
    while (j + 1 < ends.size()) {  // grow while the exact count still fits
      auto ok = fits(begins[i], ends[j + 1]);
      if (!ok.ok()) return ok.status();
      if (!*ok) break;
      ++j;
    }
    absl::Status s = emit(begins[i], ends[j]);
    if (!s.ok()) return s;
    i = j + 1;
  }
  return pieces;
}

}  // namespace vox
