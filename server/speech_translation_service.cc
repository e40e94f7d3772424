#include "server/speech_translation_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/synchronization/mutex.h"
#include "server/speech_translate_session.h"

namespace vox {

namespace {

bool IsSentenceEnd(const std::string& text, size_t i, size_t* len) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  if (c == '.' || c == '!' || c == '?' || c == ';') {
    *len = 1;
    return true;
  }
  if (text.compare(i, 3, "\xE2\x80\xA6") == 0) {  // …
    *len = 3;
    return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> SplitAtSentenceEnds(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  size_t i = 0;
  while (i < text.size()) {
    size_t len = 0;
    if (IsSentenceEnd(text, i, &len)) {
      current.append(text, i, len);
      i += len;
      if (i == text.size() || absl::ascii_isspace(static_cast<unsigned char>(text[i]))) {
        std::string piece(absl::StripAsciiWhitespace(current));
        if (!piece.empty()) out.push_back(std::move(piece));
        current.clear();
      }
      continue;
    }
    current.push_back(text[i]);
    ++i;
  }
  std::string piece(absl::StripAsciiWhitespace(current));
  if (!piece.empty()) out.push_back(std::move(piece));
  return out;
}

SpeechTranslationServiceImpl::SpeechTranslationServiceImpl(const ModelRegistry* registry,
                                                           const std::atomic<bool>* draining,
                                                           Metrics* metrics, Limits limits,
                                                           Hooks hooks)
    : registry_(registry),
      draining_(draining),
      metrics_(metrics),
      limits_(limits),
      hooks_(std::move(hooks)),
      write_pool_(limits.write_threads) {}

void SpeechTranslationServiceImpl::BeginDrain() {
  // A session is deleted in OnDone, which takes sessions_mu_ first: alive while it is held.
  absl::MutexLock lock(&sessions_mu_);
  for (SpeechTranslateReactor* session : sessions_) session->Drain();
}

grpc::ServerBidiReactor<v1::SpeechTranslateRequest, v1::SpeechTranslateResponse>*
SpeechTranslationServiceImpl::SpeechTranslate(grpc::CallbackServerContext* context) {
  auto* reactor = new SpeechTranslateReactor(this, context);
  reactor->Start();
  return reactor;
}

}  // namespace vox
