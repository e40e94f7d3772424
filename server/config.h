#ifndef VOX_SERVER_CONFIG_H_
#define VOX_SERVER_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engines/core/engine_options.h"
#include "server/auth/tls_files.h"
#include "server/scheduler/scheduler_options.h"

namespace vox {

// Per engine kind (translation, speech): how its models are placed and scheduled. Every model
// of the kind gets one ContinuousBatcher (server/scheduler) with these settings.
struct EngineKindConfig {
  EngineOptions options;   // device, dtype, threads, verify_checksums (copied from models)
  int max_batch_size = 8;  // sequences per decode step (per replica)
  int max_queue_delay_us = 0;  // an idle replica waits this long for a fuller first batch
  int max_queue_size = 256;    // sequences (one per text) waiting per model; full ->
                               // RESOURCE_EXHAUSTED at once (TOML `queue_size` / flag
                               // --queue-size are accepted aliases)
  // Admission by waiting time: while the oldest sequence a new one would wait behind has
  // waited longer than this, new work gets RESOURCE_EXHAUSTED at once ("overloaded"); 0 = off.
  int max_queue_wait_ms = 0;
  int priority_levels = 3;     // >= 2; vox.v1.Priority maps onto them (SchedulerPriority)
  absl::Duration default_deadline = absl::InfiniteDuration();  // for calls without a deadline
  int replicas = 1;            // model instances (each loads the model, each has a worker)
  int max_paused_slots = 2;    // slots paused (slow-reading) streams may hold per replica
  absl::Duration max_pause = absl::Seconds(30);  // longest a stream may stay paused
  // A paused stream counts toward max_paused_slots only after this long (writes catching up
  // pause streams briefly all the time).
  absl::Duration paused_slot_grace = absl::Seconds(1);
};

// The scheduler settings of one kind (name is left for the registry to fill in).
SchedulerOptions SchedulerOptionsFor(const EngineKindConfig& kind);

// When the built-in engines (Apertium translation, espeak-ng speech) are loaded.
enum class BuiltinMode {
  kAuto,      // only for a kind (translation / speech) that no exported model serves
  kFallback,  // always, as fallbacks: they serve only what no exported model serves
  kOff,       // never
};

struct BuiltinConfig {
  BuiltinMode translation = BuiltinMode::kAuto;  // Apertium
  BuiltinMode speech = BuiltinMode::kAuto;       // espeak-ng
  // Apertium modes to serve ("<src>-<tgt>", ISO 639-3); each needs its Debian package.
  std::vector<std::string> apertium_pairs = {"eng-spa", "spa-eng", "eng-cat", "cat-eng"};
  // NLLB codes espeak-ng serves; empty = every language it has a voice for.
  std::vector<std::string> espeak_languages;
};

// Everything voxd reads from its TOML file and flags. Plain data; copyable.
// docs/operations.md documents every field; deploy/voxd.toml is the annotated example.
struct ServerConfig {
  std::string listen = "127.0.0.1:50051";  // HOST:PORT; port 0 = any free port
  std::string models_dir;                  // one subdirectory per exported model
  bool verify_checksums = true;            // SHA-256 of every model file at start-up
  int max_texts_per_call = 64;             // Translate: more texts -> INVALID_ARGUMENT
  int max_text_chars = 100000;  // Translate: a longer text (code points) -> INVALID_ARGUMENT
  // Translate: a directory of server glossaries, one file per language pair named
  // SRC-TGT.tsv (docs/operations.md, "Glossaries"); "" = none.
  std::string glossary_dir;
  // The voice store (VoiceService.CreateVoice): one file per created voice, loaded at start-up
  // (docs/operations.md, "Voice store"); "" = none. At most max_voices created voices.
  std::string voices_dir;
  int max_voices = 1000;
  absl::Duration shutdown_grace = absl::Seconds(10);  // SIGTERM: in-flight work may take this long
  bool access_log = true;                  // one stderr line per call
  std::string metrics_listen;              // HOST:PORT of the Prometheus /metrics endpoint; "" = off
  // Synthesize: bytes queued for a slow reader before its stream is paused (audio waits in the
  // queue as float PCM, 4 bytes a sample, until the write path encodes it).
  int stream_buffer_bytes = 4 << 20;
  EngineKindConfig translation;
  EngineKindConfig speech;
  BuiltinConfig builtin;

  // Access control and connection limits (docs/operations.md, "TLS and tokens", "Limits").
  TlsFiles tls;                    // [tls]: off unless cert_file and key_file are set
  std::string token_file;          // [auth] token_file: bearer tokens; needs TLS; "" = no tokens
  bool health_open = true;         // [auth] health_open: grpc.health.v1 without a token
  bool reflection_open = false;    // [auth] reflection_open: server reflection without a token
  int max_message_bytes = 4 << 20;  // largest request message; larger -> RESOURCE_EXHAUSTED
  int max_streams_per_connection = 100;  // HTTP/2 concurrent streams one connection may open
  int max_concurrent_streams = 0;  // vox.v1 calls open at once, all clients; 0 = no limit
  int max_segments_per_session = 0;  // SpeechTranslate segments per call; 0 = no limit
  // SynthesizeStream, SpeechTranslate and CreateVoice end when the client sent nothing and
  // nothing was written for this long while no work was left (DEADLINE_EXCEEDED); 0 = never.
  absl::Duration idle_stream_timeout = absl::Seconds(300);
  // Idle connections are pinged this often (a dead peer is dropped); clients may ping no more
  // often than keepalive_min_ping_interval, else their connection is closed (ENHANCE_YOUR_CALM).
  absl::Duration keepalive_time = absl::Seconds(60);
  absl::Duration keepalive_min_ping_interval = absl::Seconds(10);
};

// "auto" | "fallback" | "off".
absl::StatusOr<BuiltinMode> ParseBuiltinMode(const std::string& text);
std::string BuiltinModeName(BuiltinMode mode);

// Parses TOML text (`source` names it in messages, e.g. the file path). Keys missing from the
// text keep the values already in `*config`; unknown keys and wrong types are INVALID_ARGUMENT
// naming the key ("voxd.toml: unknown key 'server.lisen' (allowed: ...)").
absl::Status ApplyConfigToml(const std::string& text, const std::string& source,
                             ServerConfig* config);

// Reads `path` and applies it as above. NOT_FOUND when the file cannot be read.
absl::Status ApplyConfigFile(const std::string& path, ServerConfig* config);

// What the command line asked for besides the config values.
struct CommandLine {
  std::string config_path;  // --config
  bool help = false;        // --help / -h
};

// Parses voxd's flags (argv[0] skipped): first --config FILE is read into `*config`, then every
// other flag overrides it, whatever their order. Accepts "--flag value" and "--flag=value".
// Errors name the flag and the allowed values. Returns what is not a config value.
absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                             ServerConfig* config);

// Checks cross-field rules (models dir given, positive limits, known devices and dtypes, scheduler
// settings in range) and that replicas do not oversubscribe the cores: with replicas > 1,
// replicas x threads must not exceed `cores` (0 = this machine's,
// std::thread::hardware_concurrency) and threads = 0 ("all cores") is refused. One replica keeps
// the single-engine rule (threads is the operator's call). INVALID_ARGUMENT names the key and the allowed values.
absl::Status ValidateConfig(const ServerConfig& config, int cores = 0);

// The --help text.
std::string UsageText();

}  // namespace vox

#endif  // VOX_SERVER_CONFIG_H_
