#include "server/voice_service.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engines/audio/reference_audio.h"
#include "engines/core/status_macros.h"
#include "server/call_log.h"
#include "server/discovery_service.h"
#include "server/idle_streams.h"
#include "server/unary_answer.h"

namespace vox {
namespace {

constexpr char kCreateMethod[] = "/vox.v1.VoiceService/CreateVoice";

absl::Status NoStore() {
  return absl::UnavailableError(
      "this server keeps no created voices: start voxd with --voices DIR (or [voices] dir)");
}

bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// The built-in voice named `name`, with its model; {nullptr, nullptr} when none.
std::pair<const VoiceInfo*, const SpeechModel*> FindBuiltin(const ModelRegistry& registry,
                                                            const std::string& name) {
  for (const auto& m : registry.speech()) {
    for (const VoiceInfo& v : m->engine->voices()) {
      if (v.name == name) return {&v, m.get()};
    }
  }
  return {nullptr, nullptr};
}

absl::StatusOr<ReferenceAudioFormat> FormatFromProto(v1::ReferenceAudioFormat f) {
  switch (f) {
    case v1::REFERENCE_AUDIO_FORMAT_UNSPECIFIED: return ReferenceAudioFormat::kDetect;
    case v1::REFERENCE_AUDIO_FORMAT_WAV: return ReferenceAudioFormat::kWav;
    case v1::REFERENCE_AUDIO_FORMAT_OGG_OPUS: return ReferenceAudioFormat::kOggOpus;
    case v1::REFERENCE_AUDIO_FORMAT_RAW_PCM16: return ReferenceAudioFormat::kRawPcm16;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "config.format: ", static_cast<int>(f),
          " is not one of REFERENCE_AUDIO_FORMAT_UNSPECIFIED (detect), REFERENCE_AUDIO_FORMAT_WAV, "
          "REFERENCE_AUDIO_FORMAT_OGG_OPUS, REFERENCE_AUDIO_FORMAT_RAW_PCM16"));
  }
}

}  // namespace

absl::Status CheckVoiceName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("config.name is empty");
  if (name.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.name is ", name.size(), " characters long; at most 64"));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == ' ' || c == '_' || c == '-' || c == '.';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config.name '", name,
          "' has a character outside letters, digits, space, '-', '_', '.'"));
    }
  }
  if (name.front() == ' ' || name.back() == ' ') {
    return absl::InvalidArgumentError("config.name must not start or end with a space");
  }
  return absl::OkStatus();
}

absl::Status CheckReferenceClips(const std::vector<ReferenceClip>& clips,
                                 const ReferenceAudioLimits& limits, double* seconds) {
  double total = 0;
  for (size_t i = 0; i < clips.size(); ++i) {
    const ReferenceClip& c = clips[i];
    double energy = 0;
    for (float s : c.samples) energy += static_cast<double>(s) * s;
    const double rms = c.samples.empty() ? 0 : std::sqrt(energy / c.samples.size());
    if (rms < limits.silence_rms) {
      return absl::InvalidArgumentError(absl::StrCat(
          "clip ", i, " is silent (RMS level ",
          rms > 0 ? absl::StrCat(static_cast<int>(std::floor(20 * std::log10(rms))), " dBFS")
                  : "-inf dBFS",
          ", below -60 dBFS)"));
    }
    total += static_cast<double>(c.samples.size()) / c.sample_rate;
  }
  *seconds = total;
  if (total < limits.min_seconds || total > limits.max_seconds) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the reference audio is ", absl::SixDigits(total), " s in all; it must be between ",
        limits.min_seconds, " and ", limits.max_seconds, " s"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SpeechModel*> ModelForCreatedVoice(const StoredVoice& voice,
                                                  const std::string& language,
                                                  const ModelRegistry& registry) {
  if (!Contains(voice.languages, language)) {
    return absl::InvalidArgumentError(absl::StrCat("voice '", voice.name, "' does not speak ",
                                                   language, " (it speaks ",
                                                   absl::StrJoin(voice.languages, ", "), ")"));
  }
  for (const auto& m : registry.speech()) {
    const std::string id = m->engine->voice_model_id();
    if (!id.empty() && id == voice.voice->model_id) return m.get();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "voice '", voice.name, "' was made by model '", voice.model,
      "', and no loaded model has the same weights (voice model id ", voice.voice->model_id,
      "); create the voice again with a loaded model"));
}

// One CreateVoice call. Reads on gRPC's threads; the work after the last read runs on the
// service's clone thread. A read that waits past the idle-stream timeout ends the call
// (DEADLINE_EXCEEDED, nothing stored). Deletes itself in OnDone.
class CreateVoiceReactor : public grpc::ServerReadReactor<v1::CreateVoiceRequest>,
                           public IdleStreams::Stream {
 public:
  CreateVoiceReactor(VoiceServiceImpl* service, grpc::CallbackServerContext* context,
                     v1::Voice* response)
      : service_(service), context_(context), response_(response) {}

  void Start() {
    start_ = absl::Now();
    request_id_ = RequestIdFrom(context_->client_metadata());
    token_ = TokenNameOf(*context_);
    context_->AddInitialMetadata(kRequestIdKey, request_id_);
    if (absl::Status s = service_->admission_->Admit(*context_); !s.ok()) return End(std::move(s));
    if (service_->store_ == nullptr) return End(NoStore());
    if (IdleStreams* idle = service_->admission_->idle_streams(); idle != nullptr) idle->Add(this);
    ReadNext();
  }

  void OnReadDone(bool ok) override {
    // The idle timeout ended the call while this read waited.
    if (!activity_.ReadDone(absl::Now())) return;
    if (!ok) return Clone();  // the client half-closed: all clips are here
    absl::Status s = have_config_ ? TakeAudio() : TakeConfig();
    if (!s.ok()) return End(std::move(s));
    ReadNext();
  }

  // The client went away (or the deadline passed): a voice not yet stored never will be.
  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override {
    if (IdleStreams* idle = service_->admission_->idle_streams(); idle != nullptr) idle->Remove(this);
    delete this;
  }

  void EndIfIdleSince(absl::Time cutoff) override {
    if (!activity_.EndIfIdle(cutoff, [] { return true; })) return;
    End(service_->admission_->idle_streams()->Expired(token_, "nothing was stored"));
  }

 private:
  void ReadNext() {
    if (activity_.BeginRead()) StartRead(&request_);
  }

  absl::Status TakeConfig() {
    if (!request_.has_config()) {
      return absl::InvalidArgumentError(
          "the first message must be `config` (name, languages, format, sample_rate_hz, model)");
    }
    const v1::CreateVoiceConfig& c = request_.config();
    VOX_RETURN_IF_ERROR(CheckVoiceName(c.name()));
    const ModelRegistry& registry = *service_->registry_;
    if (const auto [builtin, model] = FindBuiltin(registry, c.name()); builtin != nullptr) {
      return absl::AlreadyExistsError(absl::StrCat(
          "'", c.name(), "' is a built-in voice of model '", model->engine->info().name, "'"));
    }
    VOX_RETURN_IF_ERROR(service_->store_->CheckAvailable(c.name()));
    if (registry.speech().empty()) {
      return absl::UnavailableError("this server has no speech model loaded");
    }
    if (!c.model().empty()) {
      std::vector<std::string> names;
      for (const auto& m : registry.speech()) {
        names.push_back(m->engine->info().name);
        if (m->engine->info().name == c.model()) model_ = m.get();
      }
      if (model_ == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("config.model: no speech model '", c.model(),
                                                       "' (loaded: ", absl::StrJoin(names, ", "),
                                                       ")"));
      }
    } else {
      for (const auto& m : registry.speech()) {
        if (model_ == nullptr && !m->engine->voice_model_id().empty()) model_ = m.get();
      }
      if (model_ == nullptr) model_ = registry.speech().front().get();
    }
    const ModelInfo& info = model_->engine->info();
    if (model_->engine->voice_model_id().empty()) {
      return absl::UnimplementedError(absl::StrCat("speech model '", info.name, "' (",
                                                   info.architecture,
                                                   ") cannot clone voices"));
    }
    for (const std::string& l : c.languages()) {
      VOX_RETURN_IF_ERROR(registry.CheckSpeechLanguage(l));
      if (!Contains(info.languages, l)) {
        return absl::InvalidArgumentError(absl::StrCat("config.languages: model '", info.name,
                                                       "' does not speak ", l));
      }
    }
    languages_.assign(c.languages().begin(), c.languages().end());
    if (languages_.empty()) languages_ = info.languages;
    absl::StatusOr<ReferenceAudioFormat> format = FormatFromProto(c.format());
    if (!format.ok()) return format.status();
    format_ = *format;
    if (format_ == ReferenceAudioFormat::kRawPcm16 &&
        !IsSupportedReferenceRate(c.sample_rate_hz())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config.sample_rate_hz: ", c.sample_rate_hz(),
          " Hz is not supported for raw PCM16 (8000, 11025, 12000, 16000, 22050, 24000, 32000, "
          "44100, 48000)"));
    }
    sample_rate_ = c.sample_rate_hz();
    name_ = c.name();
    have_config_ = true;
    return absl::OkStatus();
  }

  absl::Status TakeAudio() {
    if (!request_.has_audio()) {
      return absl::InvalidArgumentError("only the first message may be `config`; then `audio`");
    }
    const v1::ReferenceAudioChunk& a = request_.audio();
    const int next = static_cast<int>(clips_.size());
    if (a.clip() == next) {
      if (next >= service_->limits_.max_clips) {
        return absl::InvalidArgumentError(
            absl::StrCat("too many clips: at most ", service_->limits_.max_clips));
      }
      clips_.emplace_back();
    } else if (a.clip() != next - 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "audio.clip ", a.clip(), " out of order: expected ", next > 0 ? next - 1 : 0,
          next > 0 ? absl::StrCat(" or ", next) : ""));
    }
    bytes_ += a.data().size();
    if (bytes_ > service_->limits_.max_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("more than ", service_->limits_.max_bytes,
                                                     " bytes of reference audio"));
    }
    clips_.back() += a.data();
    return absl::OkStatus();
  }

  void Clone() {
    if (!have_config_) {
      return End(absl::InvalidArgumentError("no `config` message was sent"));
    }
    if (clips_.empty()) return End(absl::InvalidArgumentError("no reference audio was sent"));
    service_->clone_pool_.Post([this] { End(CloneAndStore()); });
  }

  // On the clone thread. OK once *response_ is filled.
  absl::Status CloneAndStore() {
    if (service_->admission_->draining()) return Admission::ShuttingDown();
    if (cancelled_.load()) return absl::CancelledError("the call was cancelled");
    std::vector<ReferenceClip> clips;
    for (size_t i = 0; i < clips_.size(); ++i) {
      absl::StatusOr<DecodedAudio> audio = DecodeReferenceAudio(clips_[i], format_, sample_rate_);
      if (!audio.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("clip ", i, ": ", audio.status().message()));
      }
      clips.push_back(ReferenceClip{std::move(audio->samples), audio->sample_rate});
    }
    clips_.clear();
    double seconds = 0;
    VOX_RETURN_IF_ERROR(CheckReferenceClips(clips, service_->limits_, &seconds));
    absl::StatusOr<ClonedVoice> cloned = model_->engine->CloneVoice(clips);
    const std::string model_name = model_->engine->info().name;
    if (!cloned.ok()) {
      const absl::StatusCode code = cloned.status().code();
      if (ClientVisibleCode(code) || code == absl::StatusCode::kUnimplemented ||
          code == absl::StatusCode::kFailedPrecondition) {
        return cloned.status();
      }
      LogError(request_id_, absl::StrCat("model '", model_name, "' failed to clone a voice: ",
                                         cloned.status().ToString()));
      return absl::InternalError(absl::StrCat("cloning failed in model '", model_name, "': ",
                                              cloned.status().message(), " (request id ",
                                              request_id_, ")"));
    }
    if (cloned->model_id != model_->engine->voice_model_id()) {
      return absl::InternalError(absl::StrCat("model '", model_name,
                                              "' made a voice for another model id (request id ",
                                              request_id_, ")"));
    }
    if (cancelled_.load()) {
      return absl::CancelledError("the call was cancelled; nothing was stored");
    }
    StoredVoice voice;
    voice.name = name_;
    voice.languages = languages_;
    voice.model = model_name;
    voice.create_time = absl::Now();
    voice.reference_seconds = seconds;
    voice.voice = std::make_shared<const ClonedVoice>(std::move(*cloned));
    absl::StatusOr<std::shared_ptr<const StoredVoice>> stored =
        service_->store_->Add(std::move(voice));
    if (!stored.ok()) {
      if (stored.status().code() == absl::StatusCode::kUnavailable) {
        LogError(request_id_, std::string(stored.status().message()));
      }
      return stored.status();
    }
    if (service_->metrics_ != nullptr) {
      service_->metrics_->SetCreatedVoices(service_->store_->size());
    }
    CreatedVoiceToProto(**stored, *service_->registry_, response_);
    return absl::OkStatus();
  }

  // Ends the call (OK too): the last thing done with this reactor.
  void End(absl::Status status) {
    const grpc::Status g = ToGrpcStatus(status);
    const absl::Duration duration = absl::Now() - start_;
    LogCall(kCreateMethod, g, duration, request_id_, token_);
    if (service_->metrics_ != nullptr) {
      service_->metrics_->RequestFinished("CreateVoice", status.code(), duration);
    }
    Finish(g);
  }

  VoiceServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  v1::Voice* const response_;
  absl::Time start_;
  std::string request_id_;
  std::string token_;  // the caller's token name (TokenNameOf), "" without tokens
  v1::CreateVoiceRequest request_;
  bool have_config_ = false;
  std::string name_;
  std::vector<std::string> languages_;
  ReferenceAudioFormat format_ = ReferenceAudioFormat::kDetect;
  int sample_rate_ = 0;
  SpeechModel* model_ = nullptr;
  std::vector<std::string> clips_;  // encoded bytes, one entry per clip
  size_t bytes_ = 0;
  std::atomic<bool> cancelled_{false};
  StreamActivity activity_{absl::Now()};  // the reads against the idle check
};

VoiceServiceImpl::VoiceServiceImpl(const ModelRegistry* registry, VoiceStore* store,
                                   const Admission* admission, Metrics* metrics,
                                   ReferenceAudioLimits limits)
    : registry_(registry), store_(store), admission_(admission), metrics_(metrics), limits_(limits) {}

grpc::ServerReadReactor<v1::CreateVoiceRequest>* VoiceServiceImpl::CreateVoice(
    grpc::CallbackServerContext* context, v1::Voice* response) {
  auto* reactor = new CreateVoiceReactor(this, context, response);
  reactor->Start();
  return reactor;
}

grpc::ServerUnaryReactor* VoiceServiceImpl::GetVoice(grpc::CallbackServerContext* context,
                                                     const v1::GetVoiceRequest* request,
                                                     v1::Voice* response) {
  return AnswerUnary(context, admission_, metrics_, "/vox.v1.VoiceService/GetVoice", [&]() -> absl::Status {
    if (const auto [builtin, model] = FindBuiltin(*registry_, request->name());
        builtin != nullptr) {
      BuiltinVoiceToProto(*builtin, *model, response);
      return absl::OkStatus();
    }
    if (store_ != nullptr) {
      if (std::shared_ptr<const StoredVoice> v = store_->Find(request->name()); v != nullptr) {
        CreatedVoiceToProto(*v, *registry_, response);
        return absl::OkStatus();
      }
    }
    return absl::NotFoundError(absl::StrCat("no voice is named '", request->name(), "'"));
  });
}

grpc::ServerUnaryReactor* VoiceServiceImpl::DeleteVoice(grpc::CallbackServerContext* context,
                                                        const v1::DeleteVoiceRequest* request,
                                                        v1::DeleteVoiceResponse*) {
  return AnswerUnary(context, admission_, metrics_, "/vox.v1.VoiceService/DeleteVoice", [&]() -> absl::Status {
    if (FindBuiltin(*registry_, request->name()).first != nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", request->name(), "' is a built-in voice; only created voices can be "
                       "deleted"));
    }
    if (store_ == nullptr) return NoStore();
    VOX_RETURN_IF_ERROR(store_->Remove(request->name()));
    if (metrics_ != nullptr) metrics_->SetCreatedVoices(store_->size());
    return absl::OkStatus();
  });
}

}  // namespace vox
