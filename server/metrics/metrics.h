#ifndef VOX_SERVER_METRICS_METRICS_H_
#define VOX_SERVER_METRICS_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engines/core/model_info.h"
#include "server/scheduler/scheduler_observer.h"

namespace prometheus {
class Exposer;
class Registry;
template <typename T>
class Family;
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace vox {

// Every metric voxd exports (docs/metrics.md lists them with labels, meaning and alerts), in one
// Prometheus registry, served as text on its own HTTP address (--metrics-listen) by
// prometheus-cpp's Exposer. Call sites are one line: metrics->RequestFinished(...).
//
// Thread-safe: every method may be called from any thread. Costs: label lookups take a short
// lock inside prometheus-cpp (a map lookup); observers returned by ObserverFor() resolve their
// labels once, so the scheduler's per-step calls are lock-free atomic updates.
// Label values must come from small fixed sets (method names, status codes, engine names,
// stages, reasons), never from client input.
class Metrics {
 public:
  // Latency buckets in seconds, 0.5 ms .. 30 s.
  static const std::vector<double>& LatencyBuckets();

  // `listen_address` is "HOST:PORT" (port 0 = any free port; see port()), or "" for no HTTP
  // endpoint (the registry still works; Scrape() renders it). INVALID_ARGUMENT for a malformed
  // address, UNAVAILABLE when it cannot be bound (naming the address).
  static absl::StatusOr<std::unique_ptr<Metrics>> Create(const std::string& listen_address);
  ~Metrics();

  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The port the endpoint listens on (0 when there is none).
  int port() const { return port_; }
  // The registry in Prometheus text format (what GET /metrics returns, less the exposer's own).
  std::string Scrape() const;

  // --- Requests (method: "Translate", "Synthesize", "SpeechTranslate", "ListModels", ...).
  // One finished RPC: vox_requests_total and vox_request_duration_seconds by method and code.
  void RequestFinished(absl::string_view method, absl::StatusCode code, absl::Duration duration);
  // Server-streaming calls open now (vox_inflight_streams{method}).
  void StreamOpened(absl::string_view method);
  void StreamClosed(absl::string_view method);
  // SpeechTranslate sessions open now.
  void SessionOpened();
  void SessionClosed();
  // One SpeechTranslate segment answered in full (translation, audio, segment_end sent):
  // vox_speech_translate_segments_total and vox_speech_translate_segment_seconds (segment
  // arrival to its segment_end message).
  void SegmentFinished(absl::Duration latency);

  // --- Audio delivery (method as above).
  void TimeToFirstAudio(absl::string_view method, absl::Duration d);
  void AudioChunkGap(absl::string_view method, absl::Duration d);
  // SynthesizeStream: from the piece that completed a sentence to that sentence's first audio
  // (vox_sentence_first_audio_seconds{method}).
  void SentenceFirstAudio(absl::string_view method, absl::Duration d);
  // Synthesis compute time / audio duration of one finished synthesis (< 1 = faster than real
  // time).
  void RealTimeFactor(absl::string_view engine, double rtf);

  // --- Work done.
  void TokensGenerated(absl::string_view engine, int64_t n);
  void CodesGenerated(absl::string_view engine, int64_t n);
  // Compute time of one stage run outside a scheduler (tokenize, detokenize, opus, ...).
  void Compute(absl::string_view engine, absl::string_view stage, absl::Duration d);
  // A request refused or ended early outside the scheduler (e.g. "invalid_argument", "draining").
  void Rejected(absl::string_view engine, absl::string_view reason);
  // An engine's helper pipeline was restarted after a stage died or hung (the built-in
  // Apertium engine runs one process chain per language pair: engine "apertium",
  // pipeline "eng-spa").
  void PipelineRestart(absl::string_view engine, absl::string_view pipeline);

  // Voice store (voxd --voices): a voice file not loaded at start-up (corrupt, truncated,
  // unknown format version), and the number of created voices held now.
  void VoiceFileSkipped();
  void SetCreatedVoices(int count);

  // --- Access control (docs/operations.md, "TLS and tokens"). Token names come from the
  // operator's token file, never from the client.
  // A call refused before its handler: reason "missing_token", "invalid_token",
  // "expired_token", "service_not_allowed" (vox_auth_rejections_total{reason}).
  void AuthRejected(absl::string_view reason);
  // A call admitted with a token (vox_token_requests_total{token}).
  void TokenAdmitted(absl::string_view token);
  // A call, or the rest of a stream, refused by a quota or limit named by its config key
  // (vox_quota_rejections_total{token,quota}; `token` "" = none, labelled "-").
  void QuotaRejected(absl::string_view token, absl::string_view quota);
  // Characters of text a token's call sent, once admitted (vox_token_characters_total{token}).
  void TokenCharacters(absl::string_view token, int64_t characters);
  // A SIGHUP reload of the TLS files or the token file (vox_config_reloads_total{what,result}).
  void ConfigReloaded(absl::string_view what, bool ok);

  // vox_model_info{name,kind,architecture,device,dtype} = 1 for a loaded model.
  void SetModelInfo(const ModelInfo& info);

  // An observer for one scheduler: queue depth/wait, running batch, paused streams, batch size,
  // compute by step and rejections, labelled {engine, stage} (stage: "encode", "decode",
  // "translate", "gpt", "vocode", ...). The observer must not outlive this Metrics.
  std::unique_ptr<SchedulerObserver> ObserverFor(absl::string_view engine,
                                                 absl::string_view stage);

 private:
  Metrics();
  class Observer;

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;

  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_duration_;
  prometheus::Family<prometheus::Gauge>* inflight_streams_;
  prometheus::Family<prometheus::Gauge>* sessions_open_;
  prometheus::Family<prometheus::Counter>* segments_;
  prometheus::Family<prometheus::Histogram>* segment_duration_;
  prometheus::Family<prometheus::Histogram>* time_to_first_audio_;
  prometheus::Family<prometheus::Histogram>* audio_chunk_gap_;
  prometheus::Family<prometheus::Histogram>* sentence_first_audio_;
  prometheus::Family<prometheus::Histogram>* real_time_factor_;
  prometheus::Family<prometheus::Counter>* tokens_;
  prometheus::Family<prometheus::Counter>* codes_;
  prometheus::Family<prometheus::Histogram>* compute_;
  prometheus::Family<prometheus::Counter>* rejections_;
  prometheus::Family<prometheus::Counter>* pipeline_restarts_;
  prometheus::Family<prometheus::Counter>* voice_files_skipped_;
  prometheus::Family<prometheus::Gauge>* created_voices_;
  prometheus::Family<prometheus::Gauge>* model_info_;
  prometheus::Family<prometheus::Counter>* auth_rejections_;
  prometheus::Family<prometheus::Counter>* token_requests_;
  prometheus::Family<prometheus::Counter>* quota_rejections_;
  prometheus::Family<prometheus::Counter>* token_characters_;
  prometheus::Family<prometheus::Counter>* config_reloads_;
  prometheus::Family<prometheus::Gauge>* queue_depth_;
  prometheus::Family<prometheus::Histogram>* queue_wait_;
  prometheus::Family<prometheus::Gauge>* running_batch_;
  prometheus::Family<prometheus::Gauge>* paused_streams_;
  prometheus::Family<prometheus::Histogram>* batch_size_;
};

}  // namespace vox

#endif  // VOX_SERVER_METRICS_METRICS_H_
