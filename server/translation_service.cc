#include "server/translation_service.h"

#include <algorithm>
#include <atomic>
#include <limits>
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
#include "server/limit_refusal.h"
#include "server/translate_plan.h"

namespace vox {
namespace {

constexpr char kTranslateMethod[] = "/vox.v1.TranslationService/Translate";

// One Translate call: each sentence of each text (PlanTranslateCall) is one sequence on the
// model's scheduler, at most `window` of them submitted and not yet done at a time (a long
// document never fills the queue alone); each one that ends lets the next in. The outputs are
// gathered in order and the call finishes once every sequence ended. The first failure cancels
// the rest. Lives until OnDone, which follows Finish, which follows the last sequence's on_done.
class TranslateReactor : public grpc::ServerUnaryReactor {
 public:
  TranslateReactor(grpc::CallbackServerContext* context, const v1::TranslateRequest* request,
                   v1::TranslateResponse* response, Metrics* metrics)
      : context_(context), request_(request), response_(response), metrics_(metrics) {}

  void Start(const ModelRegistry& registry, const TranslateLimits& limits,
             const Glossaries& glossaries, const Admission& admission) {
    request_id_ = RequestIdFrom(context_->client_metadata());
    token_ = TokenNameOf(*context_);
    start_ = absl::Now();
    context_->AddInitialMetadata(kRequestIdKey, request_id_);
    if (absl::Status s = admission.Admit(*context_); !s.ok()) return FinishNow(std::move(s));
    absl::StatusOr<TranslatePlan> plan = PlanTranslateCall(*request_, registry, limits, glossaries);
    if (!plan.ok()) return FinishNow(plan.status());
    plan_ = std::move(*plan);
    if (absl::Status s = admission.Charge(token_, plan_.characters); !s.ok()) {
      return FinishNow(std::move(s));
    }
    TranslationModel* model = plan_.model;
    if (model->scheduler == nullptr) {
      return FinishNow(Admission::ShuttingDown());
    }
    clock_ = model->clock;
    deadline_ = DeadlineOnClock(DeadlineOf(*context_), clock_);
    options_.priority = SchedulerPriority(request_->priority(), model->options.priority_levels);
    options_.deadline = deadline_;
    window_ = static_cast<size_t>(std::max(1, limits.max_texts_per_call));
    {
      absl::MutexLock lock(&mu_);
      outputs_.resize(plan_.sentences.size());
      submitting_ = true;  // Start's thread submits the first window
    }
    SubmitWhileRoom();
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
    return plan_.model == nullptr ? nullptr : plan_.model->scheduler.get();
  }

  // Called with submitting_ set (this thread is the only submitter): submits sentences while
  // fewer than window_ are outstanding, then clears submitting_ under the same lock that
  // SequenceDone reads it with, so a slot freed meanwhile is never missed.
  void SubmitWhileRoom() {
    TranslationScheduler* sch = scheduler();
    if (sch == nullptr) {
      absl::MutexLock lock(&mu_);
      FailLocked(Admission::ShuttingDown());
    }
    while (true) {
      size_t i = 0;
      std::vector<TicketId> cancel;
      bool stop = false;
      bool finish = false;
      {
        absl::MutexLock lock(&mu_);
        if (failed_ || next_ == outputs_.size() || in_flight_ >= window_) {
          submitting_ = false;
          stop = true;
          if (failed_) cancel = tickets_;
          finish = in_flight_ == 0 && !finish_started_;
          if (finish) finish_started_ = true;
        } else {
          i = next_++;
          ++in_flight_;
        }
      }
      if (stop) {
        for (TicketId t : cancel) sch->Cancel(t);  // tickets_ is empty when sch is null
        if (finish) Complete();
        return;
      }
      const PlannedSentence& sentence = plan_.sentences[i];
      TranslationSequence seq;
      seq.text = sentence.text;
      seq.source = sentence.source;
      seq.target = request_->target_language();
      seq.params = plan_.params;
      seq.stop = [this] { return StopStatus(); };
      seq.on_join = [this] { Joined(); };
      TranslationScheduler::Callbacks callbacks;
      callbacks.on_output = [this, i](TranslationOutput out) {
        absl::MutexLock lock(&mu_);
        outputs_[i] = std::move(out);
      };
      callbacks.on_done = [this, i](absl::Status s, EndReason) { SequenceDone(i, std::move(s)); };
      absl::StatusOr<TicketId> ticket = sch->Submit(std::move(seq), options_, std::move(callbacks));
      absl::MutexLock lock(&mu_);
      if (!ticket.ok()) {
        --in_flight_;  // a rejected sequence gets no callback
        FailLocked(ticket.status());
      } else {
        tickets_.push_back(*ticket);
      }
    }
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

  // Worker thread (or a submitting thread, for a sequence that ended at once).
  void SequenceDone(size_t i, absl::Status s) {
    std::vector<TicketId> cancel;
    bool finish = false;
    bool submit = false;
    {
      absl::MutexLock lock(&mu_);
      --in_flight_;
      if (!s.ok() && !failed_) {
        FailLocked(std::move(s));
        cancel = tickets_;
      } else if (s.ok() && !outputs_[i].has_value() && !failed_) {
        FailLocked(absl::InternalError("the engine finished a text without an output"));
        cancel = tickets_;
      }
      if (!submitting_) {
        if (!failed_ && next_ < outputs_.size()) {
          submitting_ = submit = true;  // this thread takes over submitting
        } else {
          finish = in_flight_ == 0 && !finish_started_;
          if (finish) finish_started_ = true;
        }
      }
    }
    if (TranslationScheduler* sch = scheduler(); sch != nullptr) {
      for (TicketId t : cancel) sch->Cancel(t);
    }
    if (submit) SubmitWhileRoom();
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
    const std::string name = plan_.model->engine->info().name;
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
    for (const std::optional<TranslationOutput>& out : outputs) {
      tokens += static_cast<int64_t>(out->token_ids.size());
    }
    for (size_t t = 0; t < plan_.texts.size(); ++t) {
      AssembleTranslation(plan_, t, outputs, response_->add_translations());
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
    LogCall(kTranslateMethod, grpc_status, duration, request_id_, token_);
    if (metrics_ != nullptr) metrics_->RequestFinished("Translate", status.code(), duration);
    CountLimitRefusal(metrics_, token_, status);
    Finish(grpc_status);  // OnDone (delete) follows
  }

  grpc::CallbackServerContext* const context_;
  const v1::TranslateRequest* const request_;
  v1::TranslateResponse* const response_;
  Metrics* const metrics_;
  std::string request_id_;
  std::string token_;  // the caller's token name (TokenNameOf), "" without tokens
  absl::Time start_;
  TranslatePlan plan_;
  RequestOptions options_;
  size_t window_ = 1;
  Clock* clock_ = nullptr;
  absl::Time deadline_ = absl::InfiniteFuture();
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> sibling_failed_{false};

  absl::Mutex mu_;
  std::vector<TicketId> tickets_ ABSL_GUARDED_BY(mu_);
  std::vector<std::optional<TranslationOutput>> outputs_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;       // the next sentence to submit
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // submitted and not yet done
  bool submitting_ ABSL_GUARDED_BY(mu_) = false;  // a thread is in SubmitWhileRoom
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_started_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  absl::Time first_join_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace

absl::StatusOr<RoutedTranslation> RouteTranslateRequest(const v1::TranslateRequest& request,
                                                        const ModelRegistry& registry,
                                                        int max_texts_per_call) {
  if (request.source_language() == kAutoLanguage) {
    return absl::InvalidArgumentError(
        "source_language 'auto' is supported by Translate only; give an NLLB code");
  }
  if (request.options().do_not_translate_size() > 0 || request.options().glossary_size() > 0) {
    return absl::InvalidArgumentError(
        "options.do_not_translate and options.glossary are supported by Translate only");
  }
  for (int i = 0; i < request.texts_size(); ++i) {
    if (absl::StripAsciiWhitespace(request.texts(i)).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("texts[", i, "] is empty"));
    }
  }
  TranslateLimits limits;
  limits.max_texts_per_call = max_texts_per_call;
  limits.max_text_chars = std::numeric_limits<int>::max();
  absl::StatusOr<TranslatePlan> plan = PlanTranslateCall(request, registry, limits, Glossaries());
  if (!plan.ok()) return plan.status();
  RoutedTranslation routed;
  routed.model = plan->model;
  routed.params = plan->params;
  routed.texts.assign(request.texts().begin(), request.texts().end());
  // The plan checked sentences; the caller submits whole texts, so check those too.
  if (absl::Status s = routed.model->engine->Validate(routed.texts, request.source_language(),
                                                      request.target_language(), routed.params);
      !s.ok()) {
    return s;
  }
  return routed;
}

TranslationServiceImpl::TranslationServiceImpl(const ModelRegistry* registry,
                                               const TranslateLimits& limits,
                                               Glossaries glossaries,
                                               const Admission* admission,
                                               Metrics* metrics)
    : registry_(registry),
      limits_(limits),
      glossaries_(std::move(glossaries)),
      admission_(admission),
      metrics_(metrics) {}

grpc::ServerUnaryReactor* TranslationServiceImpl::Translate(grpc::CallbackServerContext* context,
                                                            const v1::TranslateRequest* request,
                                                            v1::TranslateResponse* response) {
  auto* reactor = new TranslateReactor(context, request, response, metrics_);
  reactor->Start(*registry_, limits_, glossaries_, *admission_);
  return reactor;
}

}  // namespace vox
