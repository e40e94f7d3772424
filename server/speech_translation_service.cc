#include "server/speech_translation_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "engines/text/sentence_splitter.h"
#include "server/speech_translate_session.h"

namespace vox {

std::vector<std::string> SplitAtSentenceEnds(const std::string& text, const std::string& language) {
  std::vector<std::string> out;
  for (const ByteSpan& s : SplitSentences(text, language)) out.push_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

SpeechTranslationServiceImpl::SpeechTranslationServiceImpl(const ModelRegistry* registry,
                                                           const Admission* admission,
                                                           Metrics* metrics, Limits limits,
                                                           Hooks hooks,
                                                           const VoiceStore* voices)
    : registry_(registry),
      voices_(voices),
      admission_(admission),
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
