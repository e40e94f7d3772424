#include "server/metrics/metrics.h"

#include <exception>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace vox {
namespace {

const std::vector<double>& BatchBuckets() {
  static const auto* buckets = new std::vector<double>{1, 2, 4, 8, 16, 32, 64, 128};
  return *buckets;
}

const std::vector<double>& RtfBuckets() {
  static const auto* buckets =
      new std::vector<double>{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10};
  return *buckets;
}

std::string S(absl::string_view v) { return std::string(v); }

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

absl::Status CheckListenAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics-listen '", address,
        "' is not HOST:PORT (for example 127.0.0.1:9464, 0.0.0.0:9464; port 0 = any free port)"));
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<double>& Metrics::LatencyBuckets() {
  static const auto* buckets = new std::vector<double>{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return *buckets;
}

// Resolves its labels once; every call is an atomic update afterwards.
class Metrics::Observer : public SchedulerObserver {
 public:
  Observer(Metrics& m, const std::string& engine, const std::string& stage)
      : queue_depth_(m.queue_depth_->Add({{"engine", engine}, {"stage", stage}})),
        running_(m.running_batch_->Add({{"engine", engine}, {"stage", stage}})),
        paused_(m.paused_streams_->Add({{"engine", engine}, {"stage", stage}})),
        queue_wait_(m.queue_wait_->Add({{"engine", engine}, {"stage", stage}},
                                       LatencyBuckets())),
        batch_size_(m.batch_size_->Add({{"engine", engine}, {"stage", stage}}, BatchBuckets())),
        compute_(m.compute_->Add({{"engine", engine}, {"stage", stage}}, LatencyBuckets())) {
    for (int i = 0; i < kRejectReasonCount; ++i) {
      const RejectReason r = static_cast<RejectReason>(i);
      rejections_[i] =
          &m.rejections_->Add({{"engine", engine}, {"reason", S(RejectReasonName(r))}});
    }
  }

  void QueueDepth(int depth) override { queue_depth_.Set(depth); }
  void RunningBatch(int running) override { running_.Set(running); }
  void PausedStreams(int paused) override { paused_.Set(paused); }
  void QueueWait(absl::Duration wait) override { queue_wait_.Observe(Seconds(wait)); }
  void Batch(int size, absl::Duration compute) override {
    batch_size_.Observe(size);
    compute_.Observe(Seconds(compute));
  }
  void Rejected(RejectReason reason) override {
    rejections_[static_cast<int>(reason)]->Increment();
  }

 private:
  prometheus::Gauge& queue_depth_;
  prometheus::Gauge& running_;
  prometheus::Gauge& paused_;
  prometheus::Histogram& queue_wait_;
  prometheus::Histogram& batch_size_;
  prometheus::Histogram& compute_;
  prometheus::Counter* rejections_[kRejectReasonCount] = {};
};

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  requests_ = &BuildCounter()
                   .Name("vox_requests_total")
                   .Help("Finished RPCs by method and gRPC status code.")
                   .Register(r);
  request_duration_ = &BuildHistogram()
                           .Name("vox_request_duration_seconds")
                           .Help("RPC duration from arrival to final status, by method and code.")
                           .Register(r);
  inflight_streams_ = &BuildGauge()
                           .Name("vox_inflight_streams")
                           .Help("Streaming RPCs open now, by method.")
                           .Register(r);
  sessions_open_ = &BuildGauge()
                        .Name("vox_speech_translate_sessions_open")
                        .Help("SpeechTranslate sessions open now.")
                        .Register(r);
  segments_ = &BuildCounter()
                  .Name("vox_speech_translate_segments_total")
                  .Help("SpeechTranslate segments answered in full (translation, audio, end).")
                  .Register(r);
  segment_duration_ = &BuildHistogram()
                           .Name("vox_speech_translate_segment_seconds")
                           .Help("SpeechTranslate segment arrival to its segment_end message.")
                           .Register(r);
  time_to_first_audio_ = &BuildHistogram()
                              .Name("vox_time_to_first_audio_seconds")
                              .Help("From request (or segment) arrival to its first audio message.")
                              .Register(r);
  sentence_first_audio_ =
      &BuildHistogram()
           .Name("vox_sentence_first_audio_seconds")
           .Help("SynthesizeStream: from the text piece that completed a sentence (or the flush "
                 "or half-close that ended it) to that sentence's first audio.")
           .Register(r);
  audio_chunk_gap_ = &BuildHistogram()
                          .Name("vox_audio_chunk_gap_seconds")
                          .Help("Time between consecutive audio messages of one stream.")
                          .Register(r);
  real_time_factor_ = &BuildHistogram()
                           .Name("vox_speech_real_time_factor")
                           .Help("Synthesis compute time divided by the audio duration produced.")
                           .Register(r);
  tokens_ = &BuildCounter()
                 .Name("vox_tokens_generated_total")
                 .Help("Text tokens generated by translation decoders, by engine.")
                 .Register(r);
  codes_ = &BuildCounter()
                .Name("vox_codes_generated_total")
                .Help("Acoustic codes generated by speech models, by engine.")
                .Register(r);
  compute_ = &BuildHistogram()
                  .Name("vox_compute_seconds")
                  .Help("Compute time of one batch, decode step or stage, by engine and stage.")
                  .Register(r);
  rejections_ = &BuildCounter()
                     .Name("vox_rejections_total")
                     .Help("Requests refused or ended early by the server, by engine and reason.")
                     .Register(r);
  pipeline_restarts_ = &BuildCounter()
                            .Name("vox_pipeline_restarts_total")
                            .Help("Engine helper pipelines (Apertium's per-pair process chain) "
                                  "restarted after a stage died or hung.")
                            .Register(r);
  voice_files_skipped_ = &BuildCounter()
                             .Name("vox_voice_files_skipped_total")
                             .Help("Voice store files not loaded at start-up: corrupt, "
                                   "truncated or of an unknown format version (logged).")
                             .Register(r);
  created_voices_ = &BuildGauge()
                         .Name("vox_created_voices")
                         .Help("Created voices (VoiceService.CreateVoice) in the voice store.")
                         .Register(r);
  auth_rejections_ = &BuildCounter()
                          .Name("vox_auth_rejections_total")
                          .Help("Calls refused before their handler for want of a valid token, "
                                "by reason.")
                          .Register(r);
  token_requests_ = &BuildCounter()
                         .Name("vox_token_requests_total")
                         .Help("Calls admitted with a bearer token, by the token's name.")
                         .Register(r);
  quota_rejections_ = &BuildCounter()
                           .Name("vox_quota_rejections_total")
                           .Help("Calls (or the rest of a stream) refused by a quota or limit, "
                                 "by token and the quota's config key.")
                           .Register(r);
  token_characters_ = &BuildCounter()
                           .Name("vox_token_characters_total")
                           .Help("Characters (code points) of text admitted, by token.")
                           .Register(r);
  config_reloads_ = &BuildCounter()
                         .Name("vox_config_reloads_total")
                         .Help("SIGHUP reloads of the TLS files and the token file, by what and "
                               "result.")
                         .Register(r);
  model_info_ = &BuildGauge()
                     .Name("vox_model_info")
                     .Help("Loaded models (value 1), labelled with name, kind, architecture, "
                           "device and dtype.")
                     .Register(r);
  queue_depth_ = &BuildGauge()
                      .Name("vox_queue_depth")
                      .Help("Requests waiting in a scheduler queue, by engine and stage.")
                      .Register(r);
  queue_wait_ = &BuildHistogram()
                     .Name("vox_queue_wait_seconds")
                     .Help("Time a request waited in a scheduler queue before it ran.")
                     .Register(r);
  running_batch_ = &BuildGauge()
                        .Name("vox_running_batch")
                        .Help("Requests or sequences running now, by engine and stage.")
                        .Register(r);
  paused_streams_ = &BuildGauge()
                         .Name("vox_paused_streams")
                         .Help("Streams paused by a slow reader while holding a decode slot.")
                         .Register(r);
  batch_size_ = &BuildHistogram()
                     .Name("vox_batch_size")
                     .Help("Requests per batch run or sequences per decode step.")
                     .Register(r);
  sessions_open_->Add({});
  // Present from the start (0), so rate() and alerts work before the first segment.
  segments_->Add({});
  segment_duration_->Add({}, LatencyBuckets());
}

Metrics::~Metrics() = default;

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(const std::string& listen_address) {
  std::unique_ptr<Metrics> m(new Metrics());
  if (listen_address.empty()) return m;
  absl::Status valid = CheckListenAddress(listen_address);
  if (!valid.ok()) return valid;
  try {
    m->exposer_ = std::make_unique<prometheus::Exposer>(listen_address, /*num_threads=*/2);
    m->exposer_->RegisterCollectable(m->registry_);
    const std::vector<int> ports = m->exposer_->GetListeningPorts();
    if (ports.empty()) {
      return absl::UnavailableError(
          absl::StrCat("metrics endpoint ", listen_address, ": no listening port"));
    }
    m->port_ = ports.front();
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on '", listen_address,
                                               "' (--metrics-listen): ", e.what()));
  }
  return m;
}

std::string Metrics::Scrape() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void Metrics::RequestFinished(absl::string_view method, absl::StatusCode code,
                              absl::Duration duration) {
  const prometheus::Labels labels{{"method", S(method)},
                                  {"code", absl::StatusCodeToString(code)}};
  requests_->Add(labels).Increment();
  request_duration_->Add(labels, LatencyBuckets()).Observe(Seconds(duration));
}

void Metrics::StreamOpened(absl::string_view method) {
  inflight_streams_->Add({{"method", S(method)}}).Increment();
}

void Metrics::StreamClosed(absl::string_view method) {
  inflight_streams_->Add({{"method", S(method)}}).Decrement();
}

void Metrics::SessionOpened() { sessions_open_->Add({}).Increment(); }

void Metrics::SessionClosed() { sessions_open_->Add({}).Decrement(); }

void Metrics::SegmentFinished(absl::Duration latency) {
  segments_->Add({}).Increment();
  segment_duration_->Add({}, LatencyBuckets()).Observe(Seconds(latency));
}

void Metrics::TimeToFirstAudio(absl::string_view method, absl::Duration d) {
  time_to_first_audio_->Add({{"method", S(method)}}, LatencyBuckets()).Observe(Seconds(d));
}

void Metrics::SentenceFirstAudio(absl::string_view method, absl::Duration d) {
  sentence_first_audio_->Add({{"method", S(method)}}, LatencyBuckets()).Observe(Seconds(d));
}

void Metrics::AudioChunkGap(absl::string_view method, absl::Duration d) {
  audio_chunk_gap_->Add({{"method", S(method)}}, LatencyBuckets()).Observe(Seconds(d));
}

void Metrics::RealTimeFactor(absl::string_view engine, double rtf) {
  real_time_factor_->Add({{"engine", S(engine)}}, RtfBuckets()).Observe(rtf);
}

void Metrics::TokensGenerated(absl::string_view engine, int64_t n) {
  if (n > 0) tokens_->Add({{"engine", S(engine)}}).Increment(static_cast<double>(n));
}

void Metrics::CodesGenerated(absl::string_view engine, int64_t n) {
  if (n > 0) codes_->Add({{"engine", S(engine)}}).Increment(static_cast<double>(n));
}

void Metrics::Compute(absl::string_view engine, absl::string_view stage, absl::Duration d) {
  compute_->Add({{"engine", S(engine)}, {"stage", S(stage)}}, LatencyBuckets())
      .Observe(Seconds(d));
}

void Metrics::AuthRejected(absl::string_view reason) {
  auth_rejections_->Add({{"reason", S(reason)}}).Increment();
}

void Metrics::TokenAdmitted(absl::string_view token) {
  token_requests_->Add({{"token", S(token)}}).Increment();
}

void Metrics::QuotaRejected(absl::string_view token, absl::string_view quota) {
  quota_rejections_->Add({{"token", token.empty() ? "-" : S(token)}, {"quota", S(quota)}})
      .Increment();
}

void Metrics::TokenCharacters(absl::string_view token, int64_t characters) {
  token_characters_->Add({{"token", S(token)}}).Increment(static_cast<double>(characters));
}

void Metrics::ConfigReloaded(absl::string_view what, bool ok) {
  config_reloads_->Add({{"what", S(what)}, {"result", ok ? "ok" : "error"}}).Increment();
}

void Metrics::Rejected(absl::string_view engine, absl::string_view reason) {
  rejections_->Add({{"engine", S(engine)}, {"reason", S(reason)}}).Increment();
}

void Metrics::PipelineRestart(absl::string_view engine, absl::string_view pipeline) {
  pipeline_restarts_->Add({{"engine", S(engine)}, {"pipeline", S(pipeline)}}).Increment();
}

void Metrics::VoiceFileSkipped() { voice_files_skipped_->Add({}).Increment(); }

void Metrics::SetCreatedVoices(int count) {
  created_voices_->Add({}).Set(static_cast<double>(count));
}

void Metrics::SetModelInfo(const ModelInfo& info) {
  model_info_
      ->Add({{"name", info.name},
             {"kind", info.kind},
             {"architecture", info.architecture},
             {"device", info.device},
             {"dtype", info.dtype}})
      .Set(1);
}

std::unique_ptr<SchedulerObserver> Metrics::ObserverFor(absl::string_view engine,
                                                        absl::string_view stage) {
  return std::make_unique<Observer>(*this, S(engine), S(stage));
}

}  // namespace vox
