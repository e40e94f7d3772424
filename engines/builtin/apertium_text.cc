#include "engines/builtin/apertium_text.h"

namespace vox {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool NeedsBackslash(char c) {
  switch (c) {
    case '$': case '/': case '<': case '>': case '@':
    case '[': case '\\': case ']': case '^': case '{': case '}':
      return true;
    default:
      return false;
  }
}

void AppendBlankRun(std::string_view run, std::string& out) {
  if (run == " ") {
    out.push_back(' ');
  } else {
    out.push_back('[');
    out.append(run);
    out.push_back(']');
  }
}

}  // namespace

std::string ToApertiumStream(std::string_view text) {
  size_t end = text.size();
  while (end > 0 && IsBlank(text[end - 1])) --end;
  std::string out;
  out.reserve(text.size() + text.size() / 8 + 8);
  size_t i = 0;
  while (i < end) {
    const char c = text[i];
    if (IsBlank(c)) {
      size_t j = i;
      while (j < end && IsBlank(text[j])) ++j;
      AppendBlankRun(text.substr(i, j - i), out);
      i = j;
      continue;
    }
    if (c == '~') {
      out.append("[~]");
    } else {
      if (NeedsBackslash(c)) out.push_back('\\');
      out.push_back(c);
    }
    ++i;
  }
  out.append(".[]");
  if (end < text.size()) AppendBlankRun(text.substr(end), out);
  return out;
}

std::string FromApertiumStream(std::string_view stream) {
  std::string out;
  out.reserve(stream.size());
  size_t i = 0;
  while (i < stream.size()) {
    const char c = stream[i];
    if (c == '.' && stream.compare(i, 3, ".[]") == 0) {
      i += 3;
    } else if (c == '\\' && i + 1 < stream.size()) {
      out.push_back(stream[i + 1]);
      i += 2;
    } else if (c == '[') {
      // Superblank: its contents, unescaped, up to the first unescaped ']'.
      ++i;
      while (i < stream.size() && stream[i] != ']') {
        if (stream[i] == '\\' && i + 1 < stream.size()) ++i;
        out.push_back(stream[i]);
        ++i;
      }
      ++i;  // the ']'
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

}  // namespace vox
