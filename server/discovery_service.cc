#include "server/discovery_service.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engines/core/languages.h"
#include "engines/core/status_macros.h"
#include "server/unary_answer.h"

namespace vox {
namespace {

void AddUnique(google::protobuf::RepeatedPtrField<std::string>* list, const std::string& value) {
  if (std::find(list->begin(), list->end(), value) == list->end()) *list->Add() = value;
}

}  // namespace

v1::ListLanguagesResponse ListLanguages(const ModelRegistry& registry) {
  std::map<std::string, v1::Language> by_code;
  auto entry = [&by_code](const std::string& code) -> v1::Language& {
    v1::Language& l = by_code[code];
    l.set_code(code);
    return l;
  };
  for (const auto& m : registry.translation()) {
    const ModelInfo& info = m->engine->info();
    for (const std::string& code : info.languages) {
      v1::Language& l = entry(code);
      // A language is a source (target) when the engine pairs it with some other language.
      for (const std::string& other : info.languages) {
        if (other == code) continue;
        if (m->engine->SupportsPair(code, other)) l.set_translate_source(true);
        if (m->engine->SupportsPair(other, code)) l.set_translate_target(true);
        if (l.translate_source() && l.translate_target()) break;
      }
      AddUnique(l.mutable_translation_engines(), info.name);
    }
  }
  for (const auto& m : registry.speech()) {
    const ModelInfo& info = m->engine->info();
    for (const VoiceInfo& voice : m->engine->voices()) {
      for (const std::string& code : voice.languages) {
        v1::Language& l = entry(code);
        l.set_speech(true);
        AddUnique(l.mutable_speech_engines(), info.name);
      }
    }
  }
  v1::ListLanguagesResponse response;
  for (auto& [code, language] : by_code) *response.add_languages() = std::move(language);
  return response;
}

void BuiltinVoiceToProto(const VoiceInfo& voice, const SpeechModel& model, v1::Voice* out) {
  out->set_name(voice.name);
  out->mutable_languages()->Add(voice.languages.begin(), voice.languages.end());
  out->set_model(model.engine->info().name);
  out->set_native_sample_rate_hz(model.engine->sample_rate());
}

void CreatedVoiceToProto(const StoredVoice& voice, const ModelRegistry& registry,
                         v1::Voice* out) {
  out->set_name(voice.name);
  out->mutable_languages()->Add(voice.languages.begin(), voice.languages.end());
  out->set_model(voice.model);
  for (const auto& m : registry.speech()) {
    if (m->engine->info().name == voice.model) {
      out->set_native_sample_rate_hz(m->engine->sample_rate());
    }
  }
  out->set_created(true);
  const int64_t micros = absl::ToUnixMicros(voice.create_time);
  out->mutable_create_time()->set_seconds(micros / 1000000);
  out->mutable_create_time()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  out->set_reference_audio_seconds(voice.reference_seconds);
}

absl::StatusOr<v1::ListVoicesResponse> ListVoices(const ModelRegistry& registry,
                                                  const VoiceStore* store,
                                                  const std::string& language) {
  if (!language.empty()) {
    VOX_RETURN_IF_ERROR(registry.CheckSpeechLanguage(language));
  }
  v1::ListVoicesResponse response;
  for (const auto& m : registry.speech()) {
    for (const VoiceInfo& voice : m->engine->voices()) {
      if (!language.empty() && std::find(voice.languages.begin(), voice.languages.end(),
                                         language) == voice.languages.end()) {
        continue;
      }
      BuiltinVoiceToProto(voice, *m, response.add_voices());
    }
  }
  if (store == nullptr) return response;
  for (const auto& voice : store->List()) {
    if (!language.empty() && std::find(voice->languages.begin(), voice->languages.end(),
                                       language) == voice->languages.end()) {
      continue;
    }
    CreatedVoiceToProto(*voice, registry, response.add_voices());
  }
  return response;
}

v1::ListModelsResponse ListModels(const ModelRegistry& registry) {
  v1::ListModelsResponse response;
  for (const ModelInfo& info : registry.Models()) {
    v1::Model* m = response.add_models();
    m->set_name(info.name);
    m->set_kind(info.kind);
    m->set_architecture(info.architecture);
    m->set_device(info.device);
    m->set_dtype(info.dtype);
    m->set_weights(info.weights);
    m->set_path(info.path);
    m->set_fallback(info.fallback);
    m->mutable_languages()->Add(info.languages.begin(), info.languages.end());
  }
  return response;
}

grpc::ServerUnaryReactor* DiscoveryServiceImpl::ListLanguages(
    grpc::CallbackServerContext* context, const v1::ListLanguagesRequest*,
    v1::ListLanguagesResponse* response) {
  return AnswerUnary(context, admission_, metrics_, "/vox.v1.DiscoveryService/ListLanguages", [&] {
    *response = vox::ListLanguages(*registry_);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* DiscoveryServiceImpl::ListVoices(grpc::CallbackServerContext* context,
                                                           const v1::ListVoicesRequest* request,
                                                           v1::ListVoicesResponse* response) {
  return AnswerUnary(context, admission_, metrics_, "/vox.v1.DiscoveryService/ListVoices", [&] {
    absl::StatusOr<v1::ListVoicesResponse> voices =
        vox::ListVoices(*registry_, voices_, request->language());
    if (!voices.ok()) return voices.status();
    *response = std::move(*voices);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* DiscoveryServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                           const v1::ListModelsRequest*,
                                                           v1::ListModelsResponse* response) {
  return AnswerUnary(context, admission_, metrics_, "/vox.v1.DiscoveryService/ListModels", [&] {
    *response = vox::ListModels(*registry_);
    return absl::OkStatus();
  });
}

}  // namespace vox
