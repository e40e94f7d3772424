// vox_xtts_tokenize VOCAB_JSON [--lang LANG] [--prepare] [--jsonl]
//
// Reads lines from stdin and prints one line per input line:
//   default       ids of XttsTokenizer::EncodeRaw(line) (the line is already prepared text)
//   --lang LANG   ids of XttsTokenizer::Encode(line, LANG) (cleaning, [lang], [SPACE], BPE)
//   --prepare     with --lang: the prepared string (JSON) instead of ids
//   --jsonl       each input line is a JSON string (so texts may hold newlines/control chars)
// Ids print as a JSON array; a failing line prints {"error": "..."}. Exit 1 on bad usage or an
// unreadable vocab, 0 otherwise.
#include <iostream>
#include <string>

#include "engines/text/xtts_tokenizer.h"
#include "nlohmann/json.hpp"

int main(int argc, char** argv) {
  std::string vocab, lang;
  bool prepare = false, jsonl = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--lang" && i + 1 < argc) {
      lang = argv[++i];
    } else if (a == "--prepare") {
      prepare = true;
    } else if (a == "--jsonl") {
      jsonl = true;
    } else if (vocab.empty() && a.rfind("--", 0) != 0) {
      vocab = a;
    } else {
      std::cerr << "unknown argument '" << a << "'\n";
      return 1;
    }
  }
  if (vocab.empty() || (prepare && lang.empty())) {
    std::cerr
        << "usage: vox_xtts_tokenize VOCAB_JSON [--lang LANG [--prepare]] [--jsonl] < lines\n";
    return 1;
  }
  auto tok = vox::XttsTokenizer::FromFile(vocab);
  if (!tok.ok()) {
    std::cerr << tok.status().message() << "\n";
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    std::string text = line;
    if (jsonl) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_string()) {
        std::cout << nlohmann::json({{"error", "line is not a JSON string"}}).dump() << "\n";
        continue;
      }
      text = j.get<std::string>();
    }
    nlohmann::json out;
    if (prepare) {
      auto p = tok->Prepare(text, lang);
      out = p.ok() ? nlohmann::json(*p)
                   : nlohmann::json({{"error", std::string(p.status().message())}});
    } else {
      auto ids = lang.empty() ? tok->EncodeRaw(text) : tok->Encode(text, lang);
      out = ids.ok() ? nlohmann::json(*ids)
                     : nlohmann::json({{"error", std::string(ids.status().message())}});
    }
    // Replace invalid UTF-8 in error messages rather than throwing.
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return 0;
}
