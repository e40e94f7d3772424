#include "engines/text/xtts_bpe.h"

#include <queue>

#include "absl/strings/str_format.h"
#include "engines/text/unicode.h"

namespace vox::xtts_internal {

namespace {

using unicode::AppendUtf8;

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

void XttsBpeModel::MergeWord(std::u32string_view word, std::vector<int64_t>* ids) const {
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

void XttsBpeModel::EncodeSegment(std::u32string_view text, std::vector<int64_t>* ids) const {
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

void XttsBpeModel::SplitAdded(std::u32string_view text, const std::vector<AddedToken>& tokens,
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

std::vector<int64_t> XttsBpeModel::Encode(std::u32string_view prepared) const {
  std::vector<std::pair<std::u32string_view, int64_t>> first;
  SplitAdded(prepared, added_raw, &first);
  std::vector<int64_t> ids;
  std::vector<std::pair<std::u32string_view, int64_t>> second;
  for (const auto& [piece, id] : first) {
    if (id >= 0) {
      ids.push_back(id);
      continue;
    }
    second.clear();
    SplitAdded(piece, added_normalized, &second);
    for (const auto& [sub, sub_id] : second) {
      if (sub_id >= 0) {
        ids.push_back(sub_id);
      } else {
        EncodeSegment(sub, &ids);
      }
    }
  }
  return ids;
}

}  // namespace vox::xtts_internal
