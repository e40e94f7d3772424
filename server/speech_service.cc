#include "server/speech_service.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engines/core/languages.h"
#include "engines/core/status_macros.h"
#include "engines/text/ssml_parser.h"
#include "engines/text/unicode.h"
#include "server/ssml_synthesis.h"
#include "server/synthesis_call.h"
#include "server/synthesize_stream_reactor.h"
#include "server/voice_service.h"

namespace vox {

namespace {

absl::StatusOr<AudioEncoding> EncodingFromProto(v1::AudioEncoding e) {
  switch (e) {
    case v1::AUDIO_ENCODING_UNSPECIFIED:
    case v1::AUDIO_ENCODING_OGG_OPUS:
      return AudioEncoding::kOggOpus;
    case v1::AUDIO_ENCODING_OPUS:
      return AudioEncoding::kOpus;
    case v1::AUDIO_ENCODING_PCM16:
      return AudioEncoding::kPcm16;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "audio.encoding: ", static_cast<int>(e),
          " is not one of AUDIO_ENCODING_OGG_OPUS, AUDIO_ENCODING_OPUS, AUDIO_ENCODING_PCM16"));
  }
}

}  // namespace

absl::StatusOr<RoutedSynthesis> RouteSynthesizeRequest(const v1::SynthesizeRequest& request,
                                                       const ModelRegistry& registry,
                                                       const VoiceStore* voices,
                                                       bool text_required) {
  if (text_required && absl::StripAsciiWhitespace(request.text()).empty()) {
    return absl::InvalidArgumentError("text is empty");
  }
  const std::vector<std::string> languages = registry.SpeechLanguages();
  if (languages.empty()) return absl::UnavailableError("this server has no speech model loaded");
  if (request.language().empty()) {
    return absl::InvalidArgumentError("language is required: an NLLB code such as eng_Latn");
  }
  VOX_RETURN_IF_ERROR(registry.CheckSpeechLanguage(request.language()));
  RoutedSynthesis routed;
  routed.model = registry.FindSpeech(request.language(), request.voice());
  // A created voice, when no built-in voice has the name.
  std::shared_ptr<const StoredVoice> created;
  if (routed.model == nullptr && !request.voice().empty() && voices != nullptr &&
      (created = voices->Find(request.voice())) != nullptr) {
    absl::StatusOr<SpeechModel*> model =
        ModelForCreatedVoice(*created, request.language(), registry);
    if (!model.ok()) return model.status();
    routed.model = *model;
    routed.request.cloned_voice = created->voice;
  }
  if (routed.model == nullptr) {
    std::vector<std::string> names;
    for (const auto& m : registry.speech()) {
      for (const VoiceInfo& v : m->engine->voices()) {
        if (std::find(v.languages.begin(), v.languages.end(), request.language()) !=
            v.languages.end()) {
          names.push_back(v.name);
        }
      }
    }
    if (voices != nullptr) {
      for (const auto& v : voices->List()) {
        if (std::find(v->languages.begin(), v->languages.end(), request.language()) !=
            v->languages.end()) {
          names.push_back(v->name);
        }
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        UnknownValueMessage("voice", request.voice(), names), " (voices for ",
        request.language(), ")"));
  }
  if (!v1::Priority_IsValid(request.priority())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "priority: ", request.priority(),
        " is not one of PRIORITY_UNSPECIFIED, PRIORITY_LOW, PRIORITY_NORMAL, PRIORITY_HIGH"));
  }
  const v1::SynthesisOptions& o = request.options();
  if (o.temperature() < 0 || o.top_k() < 0 || o.top_p() < 0 || o.top_p() > 1 ||
      o.repetition_penalty() < 0 || o.speed() < 0 || o.pitch() < 0 || o.pitch() > 100 ||
      o.forced_codes() < 0) {
    return absl::InvalidArgumentError(
        "options: temperature, top_k, repetition_penalty, speed and forced_codes must be >= 0, "
        "top_p in [0, 1], pitch in [0, 100] (0 = default)");
  }
  routed.request.text = request.text();
  routed.request.language = request.language();
  routed.request.voice = request.voice();
  routed.request.params.greedy = o.greedy();
  routed.request.params.seed = o.seed();
  routed.request.params.temperature = o.temperature();
  routed.request.params.top_k = o.top_k();
  routed.request.params.top_p = o.top_p();
  routed.request.params.repetition_penalty = o.repetition_penalty();
  routed.request.params.speed = o.speed();
  routed.request.params.pitch = o.pitch();
  routed.request.params.forced_codes = o.forced_codes();
  absl::StatusOr<AudioEncoding> encoding = EncodingFromProto(request.audio().encoding());
  if (!encoding.ok()) return encoding.status();
  routed.audio.encoding = *encoding;
  routed.audio.sample_rate_hz = request.audio().sample_rate_hz();
  routed.audio.bitrate_bps = request.audio().bitrate_bps();
  routed.audio.complexity = request.audio().has_complexity() ? request.audio().complexity() : -1;
  if (absl::Status s =
          AudioStreamEncoder::ValidateConfig(routed.audio, routed.model->engine->sample_rate());
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("audio: ", s.message()));
  }
  // SSML and live text: each utterance is checked on its own.
  if (text_required && !LooksLikeSsml(request.text())) {
    if (absl::Status s = routed.model->engine->Validate(routed.request); !s.ok()) return s;
  }
  return routed;
}

absl::Status SlowReaderStatus(const absl::Status& status, EndReason why) {
  if (why == EndReason::kPausedTooLong || why == EndReason::kTooManyPaused) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the client read too slowly: ", status.message()));
  }
  return status;
}

// One Synthesize call: its text (one utterance, or an SSML document's utterances) spoken by a
// SynthesisCall. Lives until OnDone, which follows the call's finish.
class SynthesizeReactor : public grpc::ServerWriteReactor<v1::SynthesizeResponse> {
 public:
  SynthesizeReactor(SpeechServiceImpl* service, grpc::CallbackServerContext* context,
                    const v1::SynthesizeRequest* request)
      : service_(service),
        context_(context),
        request_(request),
        call_(service, "Synthesize", [this](const v1::SynthesizeResponse* m) { StartWrite(m); },
              [this](const grpc::Status& s) { Finish(s); }) {}

  void Start() {
    if (!call_.Open(context_)) return;
    absl::StatusOr<RoutedSynthesis> routed =
        RouteSynthesizeRequest(*request_, *service_->registry_, service_->voices_);
    if (!routed.ok()) return call_.Fail(routed.status());
    std::vector<Utterance> utterances;
    if (LooksLikeSsml(request_->text())) {
      absl::StatusOr<std::vector<Utterance>> ssml = SsmlUtterances(*routed, request_->text());
      if (!ssml.ok()) return call_.Fail(ssml.status());
      utterances = std::move(*ssml);
    } else {
      utterances.push_back(Utterance{routed->request});
    }
    const int64_t characters = static_cast<int64_t>(unicode::CodePoints(request_->text()));
    if (absl::Status s = service_->admission_->Charge(call_.token(), characters); !s.ok()) {
      return call_.Fail(std::move(s));
    }
    if (!call_.Begin(*routed, request_->priority(), *context_).ok()) return;
    for (Utterance& u : utterances) call_.Speak(std::move(u));
    call_.EndOfInput();
  }

  void OnWriteDone(bool ok) override { call_.OnWriteDone(ok); }
  // The engine stops at the next step (queued: at once).
  void OnCancel() override { call_.OnCancel(); }
  void OnDone() override { delete this; }

 private:
  SpeechServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  const v1::SynthesizeRequest* const request_;
  SynthesisCall call_;  // last: its callbacks only run while the call is alive
};

SpeechServiceImpl::SpeechServiceImpl(const ModelRegistry* registry,
                                     const Admission* admission, Metrics* metrics,
                                     Limits limits, const VoiceStore* voices)
    : registry_(registry),
      voices_(voices),
      admission_(admission),
      metrics_(metrics),
      limits_(limits),
      write_pool_(limits.write_threads) {}

void AudioChunkToProto(EncodedAudio* audio, v1::AudioChunk* out) {
  out->set_data(std::move(audio->data));
  for (std::string& p : audio->packets) *out->add_packets() = std::move(p);
  out->set_sequence(audio->sequence);
  out->set_timestamp_samples(audio->timestamp_samples);
  out->set_num_samples(audio->num_samples);
}

void AudioHeaderToProto(const AudioHeaderInfo& h, v1::AudioHeader* out) {
  switch (h.encoding) {
    case AudioEncoding::kOpus: out->set_encoding(v1::AUDIO_ENCODING_OPUS); break;
    case AudioEncoding::kOggOpus: out->set_encoding(v1::AUDIO_ENCODING_OGG_OPUS); break;
    case AudioEncoding::kPcm16: out->set_encoding(v1::AUDIO_ENCODING_PCM16); break;
  }
  out->set_sample_rate_hz(h.sample_rate_hz);
  out->set_channels(h.channels);
  out->set_pre_skip(h.pre_skip);
  out->set_frame_samples(h.frame_samples);
}

grpc::ServerWriteReactor<v1::SynthesizeResponse>* SpeechServiceImpl::Synthesize(
    grpc::CallbackServerContext* context, const v1::SynthesizeRequest* request) {
  auto* reactor = new SynthesizeReactor(this, context, request);
  reactor->Start();
  return reactor;
}

grpc::ServerBidiReactor<v1::SynthesizeStreamRequest, v1::SynthesizeResponse>*
SpeechServiceImpl::SynthesizeStream(grpc::CallbackServerContext* context) {
  auto* reactor = new SynthesizeStreamReactor(this, context);
  reactor->Start();
  return reactor;
}

}  // namespace vox
