#include "server/config.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"
#include "engines/core/languages.h"
#include "server/toml_text.h"

namespace vox {
namespace {

const std::vector<std::string>& KnownDtypes() {
  static const auto* v = new std::vector<std::string>{"", "float32", "float16", "bfloat16"};
  return *v;
}

bool KnownDevice(const std::string& device) {
  if (device == "auto" || device == "cpu" || device == "cuda" || device == "mps") return true;
  int index = 0;
  return absl::StartsWith(device, "cuda:") && absl::SimpleAtoi(device.substr(5), &index) &&
         index >= 0;
}

absl::Status TypeError(const std::string& source, const std::string& key, const char* want) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": key '", key, "' must be ", want));
}

template <typename T>
std::function<absl::Status(const toml::node&, const std::string&)> Bind(T* out,
                                                                        const std::string& source);

template <>
std::function<absl::Status(const toml::node&, const std::string&)> Bind(std::string* out,
                                                                        const std::string& source) {
  return [out, source](const toml::node& n, const std::string& key) {
    if (!n.is_string()) return TypeError(source, key, "a string");
    *out = n.value<std::string>().value_or("");
    return absl::OkStatus();
  };
}

template <>
std::function<absl::Status(const toml::node&, const std::string&)> Bind(int* out,
                                                                        const std::string& source) {
  return [out, source](const toml::node& n, const std::string& key) {
    if (!n.is_integer()) return TypeError(source, key, "an integer");
    const int64_t v = n.value<int64_t>().value_or(0);
    if (v < 0 || v > (1 << 30)) return TypeError(source, key, "an integer in [0, 2^30]");
    *out = static_cast<int>(v);
    return absl::OkStatus();
  };
}

template <>
std::function<absl::Status(const toml::node&, const std::string&)> Bind(bool* out,
                                                                        const std::string& source) {
  return [out, source](const toml::node& n, const std::string& key) {
    if (!n.is_boolean()) return TypeError(source, key, "true or false");
    *out = n.value<bool>().value_or(false);
    return absl::OkStatus();
  };
}

template <>
std::function<absl::Status(const toml::node&, const std::string&)> Bind(
    std::vector<std::string>* out, const std::string& source) {
  return [out, source](const toml::node& n, const std::string& key) {
    const toml::array* array = n.as_array();
    if (array == nullptr) return TypeError(source, key, "an array of strings");
    std::vector<std::string> values;
    for (const toml::node& e : *array) {
      if (!e.is_string()) return TypeError(source, key, "an array of strings");
      values.push_back(e.value<std::string>().value_or(""));
    }
    *out = std::move(values);
    return absl::OkStatus();
  };
}

std::function<absl::Status(const toml::node&, const std::string&)> BindMode(
    BuiltinMode* out, const std::string& source) {
  return [out, source](const toml::node& n, const std::string& key) {
    if (!n.is_string()) return TypeError(source, key, "one of \"auto\", \"fallback\", \"off\"");
    absl::StatusOr<BuiltinMode> mode = ParseBuiltinMode(n.value<std::string>().value_or(""));
    if (!mode.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": key '", key, "': ",
                                                     mode.status().message()));
    }
    *out = *mode;
    return absl::OkStatus();
  };
}

std::function<absl::Status(const toml::node&, const std::string&)> BindSeconds(
    absl::Duration* out, const std::string& source) {
  return [out, source](const toml::node& n, const std::string& key) {
    double v = 0;
    if (n.is_integer()) {
      v = static_cast<double>(n.value<int64_t>().value_or(0));
    } else if (n.is_floating_point()) {
      v = n.value<double>().value_or(0);
    } else {
      return TypeError(source, key, "a number of seconds");
    }
    if (v < 0) return TypeError(source, key, "a number of seconds >= 0");
    *out = absl::Seconds(v);
    return absl::OkStatus();
  };
}

// Seconds, where 0 means "none" (InfiniteDuration).
std::function<absl::Status(const toml::node&, const std::string&)> BindSecondsOrNone(
    absl::Duration* out, const std::string& source) {
  auto bind = BindSeconds(out, source);
  return [bind, out](const toml::node& n, const std::string& key) {
    if (absl::Status s = bind(n, key); !s.ok()) return s;
    if (*out == absl::ZeroDuration()) *out = absl::InfiniteDuration();
    return absl::OkStatus();
  };
}

using Table = std::map<std::string, std::function<absl::Status(const toml::node&,
                                                               const std::string&)>>;

void AddEngineKind(const std::string& prefix, EngineKindConfig* kind, const std::string& source,
                   Table* keys) {
  (*keys)[prefix + ".device"] = Bind(&kind->options.device, source);
  (*keys)[prefix + ".dtype"] = Bind(&kind->options.dtype, source);
  (*keys)[prefix + ".threads"] = Bind(&kind->options.intra_op_threads, source);
  (*keys)[prefix + ".blas_threads"] = Bind(&kind->options.blas_threads, source);
  (*keys)[prefix + ".max_batch_size"] = Bind(&kind->max_batch_size, source);
  (*keys)[prefix + ".max_queue_delay_us"] = Bind(&kind->max_queue_delay_us, source);
  (*keys)[prefix + ".max_queue_size"] = Bind(&kind->max_queue_size, source);
  // The name before the scheduler was wired in; still accepted (same field).
  (*keys)[prefix + ".queue_size"] = Bind(&kind->max_queue_size, source);
  (*keys)[prefix + ".max_queue_wait_ms"] = Bind(&kind->max_queue_wait_ms, source);
  (*keys)[prefix + ".priority_levels"] = Bind(&kind->priority_levels, source);
  (*keys)[prefix + ".default_deadline_seconds"] =
      BindSecondsOrNone(&kind->default_deadline, source);
  (*keys)[prefix + ".replicas"] = Bind(&kind->replicas, source);
  (*keys)[prefix + ".max_paused_slots"] = Bind(&kind->max_paused_slots, source);
  (*keys)[prefix + ".max_pause_seconds"] = BindSeconds(&kind->max_pause, source);
  (*keys)[prefix + ".paused_slot_grace_seconds"] = BindSeconds(&kind->paused_slot_grace, source);
}

// Every key the config file may hold, dotted ("server.listen"), bound to its field.
Table ConfigKeys(ServerConfig* c, const std::string& source) {
  Table keys;
  keys["server.listen"] = Bind(&c->listen, source);
  keys["server.max_texts_per_call"] = Bind(&c->max_texts_per_call, source);
  keys["server.max_text_chars"] = Bind(&c->max_text_chars, source);
  keys["server.glossary_dir"] = Bind(&c->glossary_dir, source);
  keys["server.shutdown_grace_seconds"] = BindSeconds(&c->shutdown_grace, source);
  keys["server.access_log"] = Bind(&c->access_log, source);
  keys["server.stream_buffer_bytes"] = Bind(&c->stream_buffer_bytes, source);
  keys["server.max_message_bytes"] = Bind(&c->max_message_bytes, source);
  keys["server.max_streams_per_connection"] = Bind(&c->max_streams_per_connection, source);
  keys["server.max_concurrent_streams"] = Bind(&c->max_concurrent_streams, source);
  keys["server.max_segments_per_session"] = Bind(&c->max_segments_per_session, source);
  keys["server.idle_stream_timeout_seconds"] = BindSeconds(&c->idle_stream_timeout, source);
  keys["server.keepalive_time_seconds"] = BindSeconds(&c->keepalive_time, source);
  keys["server.keepalive_min_ping_interval_seconds"] =
      BindSeconds(&c->keepalive_min_ping_interval, source);
  keys["tls.cert_file"] = Bind(&c->tls.cert_file, source);
  keys["tls.key_file"] = Bind(&c->tls.key_file, source);
  keys["tls.client_ca_file"] = Bind(&c->tls.client_ca_file, source);
  keys["auth.token_file"] = Bind(&c->token_file, source);
  keys["auth.health_open"] = Bind(&c->health_open, source);
  keys["auth.reflection_open"] = Bind(&c->reflection_open, source);
  keys["metrics.listen"] = Bind(&c->metrics_listen, source);
  keys["voices.dir"] = Bind(&c->voices_dir, source);
  keys["voices.max_voices"] = Bind(&c->max_voices, source);
  keys["models.dir"] = Bind(&c->models_dir, source);
  keys["models.verify_checksums"] = Bind(&c->verify_checksums, source);
  keys["builtin.translation"] = BindMode(&c->builtin.translation, source);
  keys["builtin.speech"] = BindMode(&c->builtin.speech, source);
  keys["builtin.apertium_pairs"] = Bind(&c->builtin.apertium_pairs, source);
  keys["builtin.espeak_languages"] = Bind(&c->builtin.espeak_languages, source);
  AddEngineKind("translation", &c->translation, source, &keys);
  AddEngineKind("speech", &c->speech, source, &keys);
  keys["speech.vocoder_dtype"] = Bind(&c->speech.options.vocoder_dtype, source);
  return keys;
}

std::vector<std::string> KeyNames(const Table& keys) {
  std::vector<std::string> names;
  for (const auto& [k, _] : keys) names.push_back(k);
  return names;
}

absl::Status Walk(const toml::table& table, const std::string& prefix, const Table& keys,
                  const std::string& source) {
  for (const auto& [k, node] : table) {
    const std::string key = prefix.empty() ? std::string(k.str())
                                           : absl::StrCat(prefix, ".", std::string(k.str()));
    if (node.is_table()) {
      bool is_section = false;
      for (const auto& [known, _] : keys) {
        if (absl::StartsWith(known, key + ".")) is_section = true;
      }
      if (is_section) {
        if (absl::Status s = Walk(*node.as_table(), key, keys, source); !s.ok()) return s;
        continue;
      }
    }
    auto it = keys.find(key);
    if (it == keys.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": ", UnknownValueMessage("key", key, KeyNames(keys))));
    }
    if (absl::Status s = it->second(node, key); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BuiltinMode> ParseBuiltinMode(const std::string& text) {
  if (text == "auto") return BuiltinMode::kAuto;
  if (text == "fallback") return BuiltinMode::kFallback;
  if (text == "off") return BuiltinMode::kOff;
  return absl::InvalidArgumentError(
      UnknownValueMessage("built-in engine mode", text, {"auto", "fallback", "off"}));
}

std::string BuiltinModeName(BuiltinMode mode) {
  switch (mode) {
    case BuiltinMode::kAuto: return "auto";
    case BuiltinMode::kFallback: return "fallback";
    case BuiltinMode::kOff: return "off";
  }
  return "?";
}

absl::Status ApplyConfigToml(const std::string& text, const std::string& source,
                             ServerConfig* config) {
  absl::StatusOr<toml::table> parsed = ParseTomlText(text, source);
  if (!parsed.ok()) return parsed.status();
  const toml::table& table = *parsed;
  ServerConfig updated = *config;  // all or nothing
  const Table keys = ConfigKeys(&updated, source);
  if (absl::Status s = Walk(table, "", keys, source); !s.ok()) return s;
  *config = updated;
  return absl::OkStatus();
}

absl::Status ApplyConfigFile(const std::string& path, ServerConfig* config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ApplyConfigToml(buffer.str(), path, config);
}

namespace {

struct Flag {
  std::string name;
  bool takes_value;
  std::function<absl::Status(const std::string& value)> apply;
};

absl::Status ParseIntFlag(const std::string& flag, const std::string& value, int min, int* out) {
  int v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < min) {
    return absl::InvalidArgumentError(
        absl::StrCat("flag ", flag, ": '", value, "' is not an integer >= ", min));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status ParseBoolFlag(const std::string& flag, const std::string& value, bool* out) {
  if (value == "true" || value == "1" || value == "yes") {
    *out = true;
  } else if (value == "false" || value == "0" || value == "no") {
    *out = false;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("flag ", flag, ": '", value, "' is not one of true, false"));
  }
  return absl::OkStatus();
}

std::vector<Flag> Flags(ServerConfig* c) {
  auto both = [c](auto fn) {
    return [c, fn](const std::string& v) {
      fn(&c->translation, v);
      fn(&c->speech, v);
      return absl::OkStatus();
    };
  };
  // An integer flag that sets `field` of both kinds.
  auto both_int = [c](const char* flag, int min, int EngineKindConfig::*field) {
    return [c, flag, min, field](const std::string& v) {
      int n = 0;
      if (absl::Status s = ParseIntFlag(flag, v, min, &n); !s.ok()) return s;
      c->translation.*field = n;
      c->speech.*field = n;
      return absl::OkStatus();
    };
  };
  return {
      {"--models", true, [c](const std::string& v) { c->models_dir = v; return absl::OkStatus(); }},
      {"--listen", true, [c](const std::string& v) { c->listen = v; return absl::OkStatus(); }},
      {"--metrics-listen", true,
       [c](const std::string& v) { c->metrics_listen = v; return absl::OkStatus(); }},
      {"--device", true, both([](EngineKindConfig* k, const std::string& v) { k->options.device = v; })},
      {"--dtype", true, both([](EngineKindConfig* k, const std::string& v) { k->options.dtype = v; })},
      {"--threads", true,
       [c](const std::string& v) {
         int n = 0;
         if (absl::Status s = ParseIntFlag("--threads", v, 0, &n); !s.ok()) return s;
         c->translation.options.intra_op_threads = n;
         c->speech.options.intra_op_threads = n;
         return absl::OkStatus();
       }},
      {"--max-queue-size", true, both_int("--max-queue-size", 1, &EngineKindConfig::max_queue_size)},
      {"--queue-size", true, both_int("--queue-size", 1, &EngineKindConfig::max_queue_size)},
      {"--max-batch-size", true, both_int("--max-batch-size", 1, &EngineKindConfig::max_batch_size)},
      {"--max-queue-wait-ms", true,
       both_int("--max-queue-wait-ms", 0, &EngineKindConfig::max_queue_wait_ms)},
      {"--max-queue-delay-us", true,
       both_int("--max-queue-delay-us", 0, &EngineKindConfig::max_queue_delay_us)},
      {"--priority-levels", true,
       both_int("--priority-levels", 2, &EngineKindConfig::priority_levels)},
      {"--replicas", true, both_int("--replicas", 1, &EngineKindConfig::replicas)},
      {"--max-paused-slots", true,
       both_int("--max-paused-slots", 0, &EngineKindConfig::max_paused_slots)},
      {"--default-deadline", true,
       [c](const std::string& v) {
         int seconds = 0;
         if (absl::Status s = ParseIntFlag("--default-deadline", v, 0, &seconds); !s.ok()) return s;
         const absl::Duration d =
             seconds == 0 ? absl::InfiniteDuration() : absl::Seconds(seconds);
         c->translation.default_deadline = c->speech.default_deadline = d;
         return absl::OkStatus();
       }},
      {"--max-pause", true,
       [c](const std::string& v) {
         int seconds = 0;
         if (absl::Status s = ParseIntFlag("--max-pause", v, 0, &seconds); !s.ok()) return s;
         c->translation.max_pause = c->speech.max_pause = absl::Seconds(seconds);
         return absl::OkStatus();
       }},
      {"--max-texts", true,
       [c](const std::string& v) {
         return ParseIntFlag("--max-texts", v, 1, &c->max_texts_per_call);
       }},
      {"--max-text-chars", true,
       [c](const std::string& v) {
         return ParseIntFlag("--max-text-chars", v, 1, &c->max_text_chars);
       }},
      {"--tls-cert", true, [c](const std::string& v) { c->tls.cert_file = v; return absl::OkStatus(); }},
      {"--tls-key", true, [c](const std::string& v) { c->tls.key_file = v; return absl::OkStatus(); }},
      {"--tls-client-ca", true,
       [c](const std::string& v) { c->tls.client_ca_file = v; return absl::OkStatus(); }},
      {"--max-concurrent-streams", true,
       [c](const std::string& v) {
         return ParseIntFlag("--max-concurrent-streams", v, 0, &c->max_concurrent_streams);
       }},
      {"--max-segments-per-session", true,
       [c](const std::string& v) {
         return ParseIntFlag("--max-segments-per-session", v, 0, &c->max_segments_per_session);
       }},
      {"--idle-stream-timeout", true,
       [c](const std::string& v) {
         int seconds = 0;
         if (absl::Status s = ParseIntFlag("--idle-stream-timeout", v, 0, &seconds); !s.ok()) {
           return s;
         }
         c->idle_stream_timeout = absl::Seconds(seconds);
         return absl::OkStatus();
       }},
      {"--token-file", true, [c](const std::string& v) { c->token_file = v; return absl::OkStatus(); }},
      {"--glossary-dir", true,
       [c](const std::string& v) { c->glossary_dir = v; return absl::OkStatus(); }},
      {"--voices", true,
       [c](const std::string& v) { c->voices_dir = v; return absl::OkStatus(); }},
      {"--max-voices", true,
       [c](const std::string& v) { return ParseIntFlag("--max-voices", v, 1, &c->max_voices); }},
      {"--verify-checksums", true,
       [c](const std::string& v) {
         return ParseBoolFlag("--verify-checksums", v, &c->verify_checksums);
       }},
      {"--builtin", true,
       [c](const std::string& v) {
         absl::StatusOr<BuiltinMode> mode = ParseBuiltinMode(v);
         if (!mode.ok()) {
           return absl::InvalidArgumentError(absl::StrCat("flag --builtin: ", mode.status().message()));
         }
         c->builtin.translation = c->builtin.speech = *mode;
         return absl::OkStatus();
       }},
      {"--access-log", true,
       [c](const std::string& v) { return ParseBoolFlag("--access-log", v, &c->access_log); }},
      {"--shutdown-grace", true,
       [c](const std::string& v) {
         int seconds = 0;
         if (absl::Status s = ParseIntFlag("--shutdown-grace", v, 0, &seconds); !s.ok()) return s;
         c->shutdown_grace = absl::Seconds(seconds);
         return absl::OkStatus();
       }},
  };
}

}  // namespace

absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                             ServerConfig* config) {
  CommandLine cl;
  // Split into (flag, value) pairs first, so --config is applied before the others.
  std::vector<std::pair<std::string, std::string>> pairs;
  ServerConfig scratch;
  const std::vector<Flag> flag_table = Flags(&scratch);
  std::vector<std::string> names = {"--config", "--help"};
  for (const Flag& f : flag_table) names.push_back(f.name);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--help" || arg == "-h") {
      cl.help = true;
      continue;
    }
    std::string value;
    bool has_value = false;
    if (size_t eq = arg.find('='); absl::StartsWith(arg, "--") && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    if (std::find(names.begin(), names.end(), arg) == names.end()) {
      if (!absl::StartsWith(arg, "-")) {
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected argument '", arg, "' (voxd takes only flags; see --help)"));
      }
      return absl::InvalidArgumentError(UnknownValueMessage("flag", arg, names));
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("flag ", arg, " needs a value"));
      }
      value = args[++i];
    }
    pairs.emplace_back(arg, value);
  }
  for (const auto& [flag, value] : pairs) {
    if (flag == "--config") {
      cl.config_path = value;
      if (absl::Status s = ApplyConfigFile(value, config); !s.ok()) return s;
    }
  }
  const std::vector<Flag> flags = Flags(config);
  for (const auto& [flag, value] : pairs) {
    if (flag == "--config") continue;
    for (const Flag& f : flags) {
      if (f.name != flag) continue;
      if (absl::Status s = f.apply(value); !s.ok()) return s;
    }
  }
  return cl;
}

SchedulerOptions SchedulerOptionsFor(const EngineKindConfig& kind) {
  SchedulerOptions o;
  o.max_batch_size = kind.max_batch_size;
  o.max_queue_delay_us = kind.max_queue_delay_us;
  o.max_queue_size = kind.max_queue_size;
  o.max_queue_wait = kind.max_queue_wait_ms > 0 ? absl::Milliseconds(kind.max_queue_wait_ms)
                                                : absl::InfiniteDuration();
  o.priority_levels = kind.priority_levels;
  o.default_deadline = kind.default_deadline;
  o.replicas = kind.replicas;
  o.max_paused_slots = kind.max_paused_slots;
  o.max_pause = kind.max_pause;
  o.paused_slot_grace = kind.paused_slot_grace;
  return o;
}

absl::Status ValidateConfig(const ServerConfig& c, int cores) {
  if (cores <= 0) cores = static_cast<int>(std::thread::hardware_concurrency());
  if (cores <= 0) cores = 1;
  if (c.models_dir.empty() && c.builtin.translation == BuiltinMode::kOff &&
      c.builtin.speech == BuiltinMode::kOff) {
    return absl::InvalidArgumentError(
        "no models directory: pass --models DIR or set [models] dir in the config file "
        "(or let the built-in engines serve: --builtin auto)");
  }
  if (c.listen.empty() || c.listen.rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", c.listen, "' must be HOST:PORT (port 0 = any free port)"));
  }
  if (c.max_texts_per_call < 1) {
    return absl::InvalidArgumentError("server.max_texts_per_call must be at least 1");
  }
  if (c.max_text_chars < 1) {
    return absl::InvalidArgumentError("server.max_text_chars must be at least 1");
  }
  if (c.stream_buffer_bytes < 1) {
    return absl::InvalidArgumentError("server.stream_buffer_bytes must be at least 1");
  }
  if (c.max_voices < 1) {
    return absl::InvalidArgumentError("voices.max_voices must be at least 1");
  }
  if (c.max_message_bytes < 1024) {
    return absl::InvalidArgumentError("server.max_message_bytes must be at least 1024");
  }
  if (c.max_segments_per_session < 0) {
    return absl::InvalidArgumentError(
        "server.max_segments_per_session must be at least 0 (0 = no limit)");
  }
  if (c.idle_stream_timeout != absl::ZeroDuration() && c.idle_stream_timeout < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        "server.idle_stream_timeout_seconds must be 0 (never) or at least 1");
  }
  if (c.max_streams_per_connection < 1) {
    return absl::InvalidArgumentError("server.max_streams_per_connection must be at least 1");
  }
  if (c.keepalive_time < absl::Seconds(1)) {
    return absl::InvalidArgumentError("server.keepalive_time_seconds must be at least 1");
  }
  if (c.tls.enabled() && (c.tls.cert_file.empty() || c.tls.key_file.empty())) {
    return absl::InvalidArgumentError(
        "TLS needs both tls.cert_file and tls.key_file (--tls-cert, --tls-key)");
  }
  if (!c.tls.client_ca_file.empty() && !c.tls.enabled()) {
    return absl::InvalidArgumentError(
        "tls.client_ca_file (--tls-client-ca) needs tls.cert_file and tls.key_file: mutual TLS "
        "is TLS with client certificates");
  }
  if (!c.token_file.empty() && !c.tls.enabled()) {
    return absl::InvalidArgumentError(
        "auth.token_file (--token-file) needs TLS (tls.cert_file, tls.key_file): a bearer token "
        "sent in plaintext can be read by anyone on the path");
  }
  const std::vector<std::string> devices = {"auto", "cpu", "cuda", "cuda:N", "mps"};
  for (const auto& [name, kind] : {std::pair<const char*, const EngineKindConfig*>{
                                       "translation", &c.translation},
                                   {"speech", &c.speech}}) {
    if (!KnownDevice(kind->options.device)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ".device: ", UnknownValueMessage("device", kind->options.device, devices)));
    }
    const auto& dtypes = KnownDtypes();
    if (std::find(dtypes.begin(), dtypes.end(), kind->options.dtype) == dtypes.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ".dtype: ",
          UnknownValueMessage("dtype", kind->options.dtype,
                              {"float32", "float16", "bfloat16", "\"\" (as exported)"})));
    }
    if (kind->options.vocoder_dtype != "float32" && kind->options.vocoder_dtype != "bfloat16") {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ".vocoder_dtype: ",
          UnknownValueMessage("vocoder_dtype", kind->options.vocoder_dtype, {"float32", "bfloat16"})));
    }
    SchedulerOptions o = SchedulerOptionsFor(*kind);
    o.name = name;
    if (absl::Status s = ValidateSchedulerOptions(o); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", s.message()));
    }
    const int threads = kind->options.intra_op_threads;
    if (kind->replicas > 1 && threads == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ".replicas = ", kind->replicas, " needs ", name,
          ".threads set: threads = 0 gives every replica all ", cores,
          " cores (set threads to at most ", std::max(1, cores / kind->replicas), ")"));
    }
    if (kind->replicas > 1 && static_cast<int64_t>(kind->replicas) * threads > cores) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ".replicas x ", name, ".threads = ", kind->replicas, " x ", threads, " = ",
          kind->replicas * threads, " threads exceeds the ", cores,
          " cores of this machine (lower threads or replicas)"));
    }
  }
  return absl::OkStatus();
}

std::string UsageText() {
  return R"(usage: voxd --models DIR [--listen HOST:PORT] [--config FILE.toml] [flags]

Serves the vox.v1 gRPC API (translation, speech, discovery, health, reflection) with every
exported model found in DIR's subdirectories. Flags override the config file.

  --models DIR              directory with one subdirectory per exported model
  --listen HOST:PORT        address to listen on; port 0 picks a free port (default 127.0.0.1:50051)
  --config FILE             TOML config file (docs/operations.md, deploy/voxd.toml)
  --metrics-listen HOST:PORT  Prometheus /metrics endpoint (default: off)
  --device D                auto | cpu | cuda | cuda:N | mps, for every engine (default auto)
  --dtype T                 float32 | float16 | bfloat16 (default: as exported)
  --threads N               LibTorch intra-op threads per engine, 0 = all cores
  --max-queue-size N        waiting sequences (texts) per model before RESOURCE_EXHAUSTED (default 256;
                            --queue-size N is the same)
  --max-batch-size N        sequences per decode step per replica (default 8)
  --max-queue-delay-us N    an idle replica waits this long for a fuller batch (default 0)
  --priority-levels N       scheduler priority levels, >= 2 (default 3)
  --replicas N              model instances per model (each loads it; default 1)
  --default-deadline S      deadline for calls that set none, seconds; 0 = none (default 0)
  --max-paused-slots N      slow-reading streams that may hold a slot per replica (default 2)
  --max-pause S             longest a stream may stay paused, seconds (default 30)
  --max-texts N             texts per Translate call (default 64)
  --max-text-chars N        characters per Translate text (default 100000)
  --glossary-dir DIR        server glossaries, one SRC-TGT.tsv file per language pair
  --voices DIR              the voice store: created (cloned) voices, one file each; created
                            when missing (default: none, CreateVoice is UNAVAILABLE)
  --max-voices N            created voices the store may hold (default 1000)
  --tls-cert FILE           PEM server certificate chain: serve TLS (with --tls-key)
  --tls-key FILE            PEM private key of --tls-cert
  --tls-client-ca FILE      PEM CA: mutual TLS, clients must present a certificate it signed
  --token-file FILE         bearer tokens (TOML, docs/operations.md); needs TLS
  --max-concurrent-streams N  vox.v1 calls open at once, all clients (default 0 = no limit)
  --max-segments-per-session N  SpeechTranslate segments per call (default 0 = no limit)
  --idle-stream-timeout S   end client streams idle this long (default 300; 0 = never)
  --builtin MODE            auto | fallback | off: the built-in engines (Apertium, espeak-ng)
                            serve a kind no exported model serves (auto), always as
                            fallbacks (fallback), or never (off); default auto
  --verify-checksums B      true | false: SHA-256 of every model file at start-up (default true)
  --access-log B            true | false: one stderr line per call (default true)
  --shutdown-grace SECONDS  how long in-flight calls may finish after SIGTERM (default 10)

Once every model is loaded and warmed up, voxd prints one line to stdout:
  voxd listening on HOST:PORT
)";
}

}  // namespace vox
