#include "server/translation_service.h"

#include <cmath>
#include <exception>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engines/core/languages.h"
#include "server/call_log.h"

namespace vox {
namespace {

constexpr char kTranslateMethod[] = "/vox.v1.TranslationService/Translate";

absl::Status CheckLanguage(const char* field, const std::string& code,
                           const std::vector<std::string>& known) {
  if (code.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is required: an NLLB code such as eng_Latn"));
  }
  if (std::find(known.begin(), known.end(), code) == known.end()) {
    return absl::InvalidArgumentError(UnknownValueMessage(field, code, known));
  }
  return absl::OkStatus();
}

// Codes the engine passes through unchanged; anything else is an engine failure (INTERNAL).
bool ClientVisibleCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
      return true;
    default:
      return false;
  }
}

// Everything one call needs after the reaction returned. Owned by the WorkItem's callbacks.
struct TranslateCall {
  grpc::CallbackServerContext* context;
  const v1::TranslateRequest* request;
  v1::TranslateResponse* response;
  grpc::ServerUnaryReactor* reactor;
  std::string request_id;
  absl::Time start;
  absl::Time deadline;
  RoutedTranslation routed;
  Metrics* metrics = nullptr;

  void Finish(const absl::Status& status) {
    const grpc::Status grpc_status = ToGrpcStatus(status);
    const absl::Duration duration = absl::Now() - start;
    LogCall(kTranslateMethod, grpc_status, duration, request_id);
    if (metrics != nullptr) metrics->RequestFinished("Translate", status.code(), duration);
    reactor->Finish(grpc_status);
  }
};

void RunTranslation(TranslateCall* call) {
  const absl::Time run_start = absl::Now();
  TranslationModel* model = call->routed.model;
  grpc::CallbackServerContext* context = call->context;
  const absl::Time deadline = call->deadline;
  StopCheck stop = [context, deadline]() {
    if (context->IsCancelled()) return absl::CancelledError("the call was cancelled");
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError("the call's deadline passed during translation");
    }
    return absl::OkStatus();
  };
  absl::StatusOr<std::vector<TranslationOutput>> outputs;
  try {
    outputs = model->engine->Translate(call->routed.texts, call->request->source_language(),
                                       call->request->target_language(), call->routed.params,
                                       stop);
  } catch (const std::exception& e) {
    outputs = absl::InternalError(absl::StrCat("engine threw: ", e.what()));
  } catch (...) {
    outputs = absl::InternalError("engine threw an unknown exception");
  }
  const absl::Time run_end = absl::Now();
  if (!outputs.ok()) {
    absl::Status s = outputs.status();
    if (!ClientVisibleCode(s.code())) {
      LogError(call->request_id, absl::StrCat("model '", model->engine->info().name,
                                              "' failed: ", s.ToString()));
      s = absl::InternalError(absl::StrCat("translation failed in model '",
                                           model->engine->info().name, "': ", s.message(),
                                           " (request id ", call->request_id, ")"));
    }
    call->Finish(s);
    return;
  }
  if (outputs->size() != call->routed.texts.size()) {
    LogError(call->request_id, absl::StrCat("model '", model->engine->info().name, "' returned ",
                                            outputs->size(), " outputs for ",
                                            call->routed.texts.size(), " texts"));
    call->Finish(absl::InternalError(absl::StrCat(
        "translation failed: wrong number of outputs (request id ", call->request_id, ")")));
    return;
  }
  v1::TranslateResponse* response = call->response;
  if (call->metrics != nullptr) {
    int64_t tokens = 0;
    for (const TranslationOutput& out : *outputs) tokens += static_cast<int64_t>(out.token_ids.size());
    call->metrics->TokensGenerated(model->engine->info().name, tokens);
    call->metrics->Compute(model->engine->info().name, "translate", run_end - run_start);
  }
  for (TranslationOutput& out : *outputs) {
    v1::Translation* t = response->add_translations();
    t->set_text(std::move(out.text));
    t->mutable_token_ids()->Add(out.token_ids.begin(), out.token_ids.end());
  }
  response->set_model(model->engine->info().name);
  response->set_queue_seconds(absl::ToDoubleSeconds(run_start - call->start));
  response->set_compute_seconds(absl::ToDoubleSeconds(run_end - run_start));
  call->Finish(absl::OkStatus());
}

}  // namespace

absl::StatusOr<RoutedTranslation> RouteTranslateRequest(const v1::TranslateRequest& request,
                                                        const ModelRegistry& registry,
                                                        int max_texts_per_call) {
  if (request.texts_size() == 0) {
    return absl::InvalidArgumentError("texts: at least one text is required");
  }
  if (request.texts_size() > max_texts_per_call) {
    return absl::InvalidArgumentError(
        absl::StrCat("texts: ", request.texts_size(), " texts in one call; the limit is ",
                     max_texts_per_call, " (server.max_texts_per_call)"));
  }
  for (int i = 0; i < request.texts_size(); ++i) {
    if (absl::StripAsciiWhitespace(request.texts(i)).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("texts[", i, "] is empty"));
    }
  }
  const std::vector<std::string> languages = registry.TranslationLanguages();
  if (languages.empty()) {
    return absl::UnavailableError("this server has no translation model loaded");
  }
  if (absl::Status s = CheckLanguage("source_language", request.source_language(), languages);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckLanguage("target_language", request.target_language(), languages);
      !s.ok()) {
    return s;
  }
  const v1::TranslateOptions& options = request.options();
  if (options.beam_size() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "options.beam_size: ", options.beam_size(), " is negative (0 or 1 = greedy, N = beam)"));
  }
  if (options.max_length() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "options.max_length: ", options.max_length(), " is negative (0 = model default)"));
  }
  if (!std::isfinite(options.length_penalty())) {
    return absl::InvalidArgumentError("options.length_penalty must be a finite number");
  }
  if (!v1::Priority_IsValid(request.priority())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "priority: ", request.priority(),
        " is not one of PRIORITY_UNSPECIFIED, PRIORITY_LOW, PRIORITY_NORMAL, PRIORITY_HIGH"));
  }
  RoutedTranslation routed;
  routed.model = registry.FindTranslation(request.source_language(), request.target_language());
  if (routed.model == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("no loaded model translates ", request.source_language(), " to ",
                     request.target_language(), " (see ListModels for each model's languages)"));
  }
  routed.texts.assign(request.texts().begin(), request.texts().end());
  routed.params.beam_size = options.beam_size() == 0 ? 1 : options.beam_size();
  routed.params.length_penalty = options.has_length_penalty() ? options.length_penalty() : 1.0f;
  routed.params.max_length = options.max_length();
  if (absl::Status s = routed.model->engine->Validate(routed.texts, request.source_language(),
                                                      request.target_language(), routed.params);
      !s.ok()) {
    return s;
  }
  return routed;
}

TranslationServiceImpl::TranslationServiceImpl(const ModelRegistry* registry,
                                               int max_texts_per_call,
                                               const std::atomic<bool>* draining,
                                               Metrics* metrics)
    : registry_(registry),
      max_texts_per_call_(max_texts_per_call),
      draining_(draining),
      metrics_(metrics) {}

grpc::ServerUnaryReactor* TranslationServiceImpl::Translate(grpc::CallbackServerContext* context,
                                                            const v1::TranslateRequest* request,
                                                            v1::TranslateResponse* response) {
  auto call = std::make_shared<TranslateCall>();
  call->context = context;
  call->request = request;
  call->response = response;
  call->reactor = context->DefaultReactor();
  call->request_id = RequestIdFrom(context->client_metadata());
  call->start = absl::Now();
  call->deadline = DeadlineOf(*context);
  call->metrics = metrics_;
  context->AddInitialMetadata(kRequestIdKey, call->request_id);

  if (draining_->load()) {
    call->Finish(absl::UnavailableError("the server is shutting down; retry on another server"));
    return call->reactor;
  }
  absl::StatusOr<RoutedTranslation> routed =
      RouteTranslateRequest(*request, *registry_, max_texts_per_call_);
  if (!routed.ok()) {
    call->Finish(routed.status());
    return call->reactor;
  }
  call->routed = std::move(*routed);
  grpc::ServerUnaryReactor* reactor = call->reactor;
  WorkItem item;
  item.deadline = call->deadline;
  item.priority = request->priority();
  item.run = [call] { RunTranslation(call.get()); };
  item.reject = [call](const absl::Status& s) { call->Finish(s); };
  if (absl::Status s = call->routed.model->queue->Submit(std::move(item)); !s.ok()) {
    if (metrics_ != nullptr) {
      metrics_->Rejected(call->routed.model->engine->info().name,
                         s.code() == absl::StatusCode::kResourceExhausted ? "queue_full"
                                                                          : "draining");
    }
    call->Finish(s);
  }
  return reactor;
}

}  // namespace vox
