#ifndef VOX_BENCH_VOXBENCH_OPTIONS_H_
#define VOX_BENCH_VOXBENCH_OPTIONS_H_

// voxbench's command line and the requests it sends. Parsing never exits or prints: errors come
// back as INVALID_ARGUMENT naming the flag, the bad value and the allowed values, and the caller
// prints them with UsageText(). Pure logic; thread-compatible.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/common/client_credentials.h"
#include "vox/v1/speech.pb.h"
#include "vox/v1/speech_translation.pb.h"
#include "vox/v1/translation.pb.h"

namespace vox::bench {

// kTranslateSynthesize is not one RPC: for each segment of a speech-translate session it calls
// Translate, then Synthesize on the translation, one after the other (what a client without
// SpeechTranslate does), so its figures compare with speech-translate's for the same text.
enum class CallKind { kTranslate, kSynthesize, kSpeechTranslate, kTranslateSynthesize };
enum class ReportFormat { kText, kJson };

// "translate", "synthesize", "speech-translate", "translate-synthesize".
const char* CallKindName(CallKind kind);
// The fully qualified method as ghz names it: "vox.v1.TranslationService.Translate";
// translate-synthesize names both, joined by '+'.
const char* CallMethodName(CallKind kind);
// Calls that carry text segments and produce audio per segment (speech-translate,
// translate-synthesize).
bool IsSegmentedCall(CallKind kind);

// gRPC's client-side load balancing over the addresses the target resolves to: pick_first
// (gRPC's default: one connection, the first address that answers) or round_robin (a connection
// to every address, calls spread over the ready ones).
enum class LoadBalancing { kPickFirst, kRoundRobin };

struct BenchOptions {
  // A gRPC target: HOST:PORT, or several addresses ("ipv4:127.0.0.1:5001,127.0.0.1:5002",
  // "dns:///vox.example:50051"), balanced by `lb`. Required.
  std::string server;
  LoadBalancing lb = LoadBalancing::kPickFirst;
  ClientSecurity security;  // --tls, --tls-ca, ..., --token-file
  CallKind call = CallKind::kTranslate;
  int concurrency = 1;
  // The run ends when `total` calls were started or `duration` passed, whichever comes first;
  // at least one of them is set (default: total = 200, as ghz's -n).
  int64_t total = 0;
  absl::Duration duration = absl::ZeroDuration();
  double rate = 0;  // calls started per second over the whole run; 0 = as fast as possible
  // Request content: --data / --data-file (protobuf JSON) or the simple flags below.
  std::string data_json;
  std::vector<std::string> texts;  // --text, repeatable
  std::string from = "eng_Latn";
  std::string to = "spa_Latn";
  bool to_set = false;
  std::string voice;
  v1::AudioEncoding encoding = v1::AUDIO_ENCODING_UNSPECIFIED;
  int sample_rate_hz = 0;
  bool greedy = false;
  int beam_size = 0;
  v1::Priority priority = v1::PRIORITY_UNSPECIFIED;
  bool priority_set = false;
  absl::Duration deadline = absl::Seconds(20);         // per call (ghz --timeout default)
  absl::Duration connect_timeout = absl::Seconds(10);  // ghz --connect-timeout default
  ReportFormat format = ReportFormat::kText;
  std::string out;  // report file; empty = stdout
  bool progress = true;
  bool details = true;  // per-call "details" in the JSON report (as ghz)
  bool help = false;
};

// Parses `args` (without argv[0]). Accepts "--flag value" and "--flag=value".
absl::StatusOr<BenchOptions> ParseFlags(const std::vector<std::string>& args);

// The channel's service config (gRPC JSON): the load-balancing policy `lb`. No retry policy:
// gRPC retries only calls without response headers, and voxd sends x-request-id in the headers
// of every answer, refusals included (docs/operations.md, "Scale-out behind nginx").
std::string ChannelServiceConfig(const BenchOptions& options);

// The usage text (flags, defaults, exit codes).
std::string UsageText();

// What one run sends. Unary calls take the requests round-robin (call i sends requests[i % n]);
// a SpeechTranslate call sends every message of `session` in order (config first, then the
// segments) and half-closes; a translate-synthesize call goes through the same `session` one
// segment at a time (Translate with the config's languages and translate options, then
// Synthesize of the translation in the target language with its voice, audio and synthesis
// options).
struct RequestPlan {
  std::vector<v1::TranslateRequest> translate;
  std::vector<v1::SynthesizeRequest> synthesize;
  std::vector<v1::SpeechTranslateRequest> session;
  std::string data_json;  // the content as JSON, for the report's options.data
};

// Builds the requests from --data (a JSON object or an array of them, in the protobuf JSON
// mapping of the call's request message; for speech-translate an array of
// SpeechTranslateRequest messages whose first is the config) or from the simple flags.
// translate-synthesize takes exactly what speech-translate takes.
// --priority overrides the data's priority. Errors name the bad field.
absl::StatusOr<RequestPlan> BuildRequests(const BenchOptions& options);

}  // namespace vox::bench

#endif  // VOX_BENCH_VOXBENCH_OPTIONS_H_
