#include "server/translation_service.h"

#include <atomic>
#include <cmath>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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

// One Translate call: each text is one sequence on the model's scheduler; the outputs are
// gathered in order and the call finishes once every sequence ended. The first failure cancels
// the rest. Lives until OnDone, which follows Finish, which follows the last sequence's on_done.
class TranslateReactor : public grpc::ServerUnaryReactor {
 public:
  TranslateReactor(grpc::CallbackServerContext* context, const v1::TranslateRequest* request,
                   v1::TranslateResponse* response, Metrics* metrics)
      : context_(context), request_(request), response_(response), metrics_(metrics) {}

  void Start(const ModelRegistry& registry, int max_texts_per_call, bool draining) {
    request_id_ = RequestIdFrom(context_->client_metadata());
    start_ = absl::Now();
    context_->AddInitialMetadata(kRequestIdKey, request_id_);
    if (draining) {
      return FinishNow(absl::UnavailableError("the server is shutting down; retry on another server"));
    }
    absl::StatusOr<RoutedTranslation> routed =
        RouteTranslateRequest(*request_, registry, max_texts_per_call);
    if (!routed.ok()) return FinishNow(routed.status());
    routed_ = std::move(*routed);
    TranslationModel* model = routed_.model;
    TranslationScheduler* scheduler = model->scheduler.get();
    if (scheduler == nullptr) {
      return FinishNow(absl::UnavailableError("the server is shutting down; retry on another server"));
    }
    clock_ = model->clock;
    deadline_ = DeadlineOnClock(DeadlineOf(*context_), clock_);
    RequestOptions options;
    options.priority = SchedulerPriority(request_->priority(), model->options.priority_levels);
    options.deadline = deadline_;
    const size_t n = routed_.texts.size();
    {
      absl::MutexLock lock(&mu_);
      outputs_.resize(n);
      submitting_ = true;
    }
    for (size_t i = 0; i < n; ++i) {
      TranslationSequence seq;
      seq.text = routed_.texts[i];
      seq.source = request_->source_language();
      seq.target = request_->target_language();
      seq.params = routed_.params;
      seq.stop = [this] { return StopStatus(); };
      seq.on_join = [this] { Joined(); };
      TranslationScheduler::Callbacks callbacks;
      callbacks.on_output = [this, i](TranslationOutput out) {
        absl::MutexLock lock(&mu_);
        outputs_[i] = std::move(out);
      };
      callbacks.on_done = [this, i](absl::Status s, EndReason) { SequenceDone(i, std::move(s)); };
      absl::StatusOr<TicketId> ticket = scheduler->Submit(std::move(seq), options, std::move(callbacks));
      absl::MutexLock lock(&mu_);
      if (!ticket.ok()) {
        FailLocked(ticket.status());
        break;
      }
      tickets_.push_back(*ticket);
      ++remaining_;
      if (failed_) break;  // a sequence already failed (or the call was cancelled)
    }
    std::vector<TicketId> cancel;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      submitting_ = false;
      if (failed_) cancel = tickets_;
      finish = remaining_ == 0 && !finish_started_;
      if (finish) finish_started_ = true;
    }
    for (TicketId t : cancel) scheduler->Cancel(t);
    if (finish) Complete();
  }

  void OnCancel() override {
    std::vector<TicketId> cancel;
    {
      absl::MutexLock lock(&mu_);
      cancelled_.store(true);
      FailLocked(absl::CancelledError("the call was cancelled"));
      cancel = tickets_;
    }
    if (TranslationScheduler* s = scheduler(); s != nullptr) {
      for (TicketId t : cancel) s->Cancel(t);
    }
  }

  void OnDone() override { delete this; }

 private:
  TranslationScheduler* scheduler() const {
    return routed_.model == nullptr ? nullptr : routed_.model->scheduler.get();
  }

  // OK while the call should go on (polled by whole-call engines, on worker threads).
  absl::Status StopStatus() {
    if (cancelled_.load()) return absl::CancelledError("the call was cancelled");
    if (clock_->Now() >= deadline_) {
      return absl::DeadlineExceededError("the call's deadline passed during translation");
    }
    if (sibling_failed_.load()) {
      return absl::CancelledError("another text of the call failed");
    }
    return absl::OkStatus();
  }

  void Joined() {
    absl::MutexLock lock(&mu_);
    if (first_join_ == absl::InfinitePast()) first_join_ = absl::Now();
  }

  void FailLocked(absl::Status s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (failed_) return;
    failed_ = true;
    error_ = std::move(s);
    sibling_failed_.store(true);
  }

  // Worker thread (or Start's thread for a sequence that ended at once).
  void SequenceDone(size_t i, absl::Status s) {
    std::vector<TicketId> cancel;
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      --remaining_;
      if (!s.ok() && !failed_) {
        FailLocked(std::move(s));
        cancel = tickets_;
      } else if (s.ok() && !outputs_[i].has_value() && !failed_) {
        FailLocked(absl::InternalError("the engine finished a text without an output"));
        cancel = tickets_;
      }
      finish = remaining_ == 0 && !submitting_ && !finish_started_;
      if (finish) finish_started_ = true;
    }
    if (TranslationScheduler* sch = scheduler(); sch != nullptr) {
      for (TicketId t : cancel) sch->Cancel(t);
    }
    if (finish) Complete();
  }

  // Every sequence ended: build the response or the error, then Finish.
  void Complete() {
    absl::Status status;
    std::vector<std::optional<TranslationOutput>> outputs;
    absl::Time first_join;
    {
      absl::MutexLock lock(&mu_);
      status = error_;
      outputs = std::move(outputs_);
      first_join = first_join_;
    }
    const std::string name = routed_.model->engine->info().name;
    if (!status.ok()) {
      if (!ClientVisibleCode(status.code())) {
        LogError(request_id_, absl::StrCat("model '", name, "' failed: ", status.ToString()));
        status = absl::InternalError(absl::StrCat("translation failed in model '", name, "': ",
                                                  status.message(), " (request id ", request_id_,
                                                  ")"));
      }
      return FinishNow(status);
    }
    const absl::Time end = absl::Now();
    if (first_join == absl::InfinitePast()) first_join = end;
    int64_t tokens = 0;
    for (std::optional<TranslationOutput>& out : outputs) {
      tokens += static_cast<int64_t>(out->token_ids.size());
      v1::Translation* t = response_->add_translations();
      t->set_text(std::move(out->text));
      t->mutable_token_ids()->Add(out->token_ids.begin(), out->token_ids.end());
    }
    if (metrics_ != nullptr) metrics_->TokensGenerated(name, tokens);
    response_->set_model(name);
    response_->set_queue_seconds(absl::ToDoubleSeconds(first_join - start_));
    response_->set_compute_seconds(absl::ToDoubleSeconds(end - first_join));
    FinishNow(absl::OkStatus());
  }

  void FinishNow(const absl::Status& status) {
    const grpc::Status grpc_status = ToGrpcStatus(status);
    const absl::Duration duration = absl::Now() - start_;
    LogCall(kTranslateMethod, grpc_status, duration, request_id_);
    if (metrics_ != nullptr) metrics_->RequestFinished("Translate", status.code(), duration);
    Finish(grpc_status);  // OnDone (delete) follows
  }

  grpc::CallbackServerContext* const context_;
  const v1::TranslateRequest* const request_;
  v1::TranslateResponse* const response_;
  Metrics* const metrics_;
  std::string request_id_;
  absl::Time start_;
  RoutedTranslation routed_;
  Clock* clock_ = nullptr;
  absl::Time deadline_ = absl::InfiniteFuture();
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> sibling_failed_{false};

  absl::Mutex mu_;
  std::vector<TicketId> tickets_ ABSL_GUARDED_BY(mu_);
  std::vector<std::optional<TranslationOutput>> outputs_ ABSL_GUARDED_BY(mu_);
  int remaining_ ABSL_GUARDED_BY(mu_) = 0;
  bool submitting_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_started_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  absl::Time first_join_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

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
  routed.params.fixed_length = options.fixed_length();
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
  auto* reactor = new TranslateReactor(context, request, response, metrics_);
  reactor->Start(*registry_, max_texts_per_call_, draining_->load());
  return reactor;
}

}  // namespace vox
