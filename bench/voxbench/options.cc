#include "bench/voxbench/options.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace vox::bench {
namespace {

constexpr const char* kDefaultText = "Hello, how are you today?";

absl::Status Bad(const std::string& flag, const std::string& value, const std::string& allowed) {
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": '", value, "' is not valid; ", allowed));
}

absl::StatusOr<int64_t> PositiveInt(const std::string& flag, const std::string& value) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < 1) return Bad(flag, value, "expected an integer >= 1");
  return v;
}

absl::StatusOr<absl::Duration> PositiveDuration(const std::string& flag, const std::string& value) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return Bad(flag, value, "expected a positive duration such as 500ms, 2s, 1m30s");
  }
  return d;
}

// Flags that take no value.
bool IsSwitch(const std::string& name) {
  return name == "--greedy" || name == "--no-progress" || name == "--no-details" ||
         name == "--help" || name == "-h";
}

// Flags that take a value.
bool TakesValue(const std::string& name) {
  static const char* const kFlags[] = {
      "--server", "--call", "--concurrency", "-c", "--total", "-n", "--duration", "-z",
      "--rate", "--data", "-d", "--data-file", "-D", "--text", "--from", "--to", "--voice",
      "--encoding", "--sample-rate", "--beam", "--priority", "--deadline", "--timeout", "-t",
      "--connect-timeout", "--format", "-O", "--out", "-o", "--lb"};
  for (const char* f : kFlags) {
    if (name == f) return true;
  }
  return false;
}

}  // namespace

const char* CallKindName(CallKind kind) {
  switch (kind) {
    case CallKind::kTranslate: return "translate";
    case CallKind::kSynthesize: return "synthesize";
    case CallKind::kSpeechTranslate: return "speech-translate";
    case CallKind::kTranslateSynthesize: return "translate-synthesize";
  }
  return "?";
}

const char* CallMethodName(CallKind kind) {
  switch (kind) {
    case CallKind::kTranslate: return "vox.v1.TranslationService.Translate";
    case CallKind::kSynthesize: return "vox.v1.SpeechService.Synthesize";
    case CallKind::kSpeechTranslate: return "vox.v1.SpeechTranslationService.SpeechTranslate";
    case CallKind::kTranslateSynthesize:
      return "vox.v1.TranslationService.Translate+vox.v1.SpeechService.Synthesize";
  }
  return "?";
}

bool IsSegmentedCall(CallKind kind) {
  return kind == CallKind::kSpeechTranslate || kind == CallKind::kTranslateSynthesize;
}

std::string ChannelServiceConfig(const BenchOptions& options) {
  nlohmann::json config;
  config["loadBalancingConfig"] = nlohmann::json::array(
      {{{options.lb == LoadBalancing::kRoundRobin ? "round_robin" : "pick_first",
         nlohmann::json::object()}}});
  return config.dump();
}

std::string UsageText() {
  return std::string(R"(usage: voxbench --server TARGET [--lb pick_first|round_robin] [TLS and token flags]
                --call translate|synthesize|speech-translate|translate-synthesize
                [--concurrency N] [--total N] [--duration D] [--rate R]
                [--data JSON | --data-file FILE | --text TEXT ... --from LANG --to LANG
                 --voice NAME --encoding opus|ogg|pcm16 --sample-rate HZ --greedy --beam N]
                [--priority high|normal|low] [--deadline D] [--connect-timeout D]
                [--format text|json] [--out FILE] [--no-progress] [--no-details]

Load generator for voxd (async gRPC client). Runs until --total calls were started or
--duration passed (whichever first; default --total 200), with at most --concurrency calls in
flight, started at most --rate per second (default: as fast as the in-flight limit allows).

  --server TARGET      voxd address (required): HOST:PORT, or a gRPC target naming several
                       (ipv4:127.0.0.1:5001,127.0.0.1:5002 or dns:///HOST:PORT)
  --lb POLICY          pick_first (default: one connection) or round_robin (calls spread over
                       every address the target resolves to)
  --call KIND          translate (unary), synthesize (server streaming), speech-translate (bidi),
                       translate-synthesize (per segment: Translate, then Synthesize of the
                       translation, one after the other: the baseline for speech-translate)
  --concurrency N      calls in flight at once (default 1)
  --total N            calls to make (default 200 unless --duration is given)
  --duration D         stop starting calls after D (e.g. 30s, 2m); in-flight calls finish
  --rate R             start at most R calls per second (a positive number)
  --data JSON          the request in protobuf JSON: an object, or an array used round-robin;
                       for speech-translate and translate-synthesize an array of
                       SpeechTranslateRequest messages
                       ({"config": {...}} first, then {"segment": {...}} ...)
  --data-file FILE     the same, read from FILE
  --text TEXT          repeatable. translate: the texts of one request; synthesize: one request
                       per text, round-robin; speech-translate, translate-synthesize: one
                       segment per text
                       (default "Hello, how are you today?")
  --from LANG          source language (synthesize: the language of the text); default eng_Latn
  --to LANG            target language (translate, speech-translate, translate-synthesize);
                       default spa_Latn
  --voice NAME         voice (synthesize, speech-translate, translate-synthesize); default: the
                       server's first voice
  --encoding E         opus, ogg or pcm16 (default: the server's, Ogg Opus)
  --sample-rate HZ     output sample rate (default: the server's)
  --greedy             greedy speech sampling (reproducible)
  --beam N             translation beam size (default: the server's, greedy)
  --priority P         high, normal or low (overrides the data's priority)
  --deadline D         per-call deadline (default 20s; translate-synthesize: the whole sequence)
  --connect-timeout D  how long to wait for the connection before starting (default 10s)
  --format F           text (default) or json (ghz's JSON report fields plus streaming figures)
  --out FILE           write the report to FILE instead of stdout
  --no-progress        no progress line on stderr
  --no-details         leave the per-call "details" list out of the JSON report

Exit status: 0 every call ended OK; 1 some call did not (the report is still written);
2 bad command line or request data; 3 the report could not be written.

TLS and tokens:
)") + kClientSecurityUsage;
}

absl::StatusOr<BenchOptions> ParseFlags(const std::vector<std::string>& args) {
  BenchOptions o;
  bool call_set = false;
  bool total_set = false;
  std::string data_file;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string security_error;
    if (ParseClientSecurityFlag(args, &i, &o.security, &security_error)) {
      if (!security_error.empty()) return absl::InvalidArgumentError(security_error);
      continue;
    }
    std::string name = args[i];
    std::string value;
    bool has_value = false;
    if (!absl::StartsWith(name, "-")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", name, "'; every option is a --flag (see --help)"));
    }
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (!IsSwitch(name) && !TakesValue(name)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", name, "' (see --help)"));
    }
    if (IsSwitch(name)) {
      if (has_value) return absl::InvalidArgumentError(absl::StrCat(name, " takes no value"));
    } else if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat(name, " needs a value (see --help)"));
      }
      value = args[++i];
    }

    if (name == "--help" || name == "-h") {
      o.help = true;
    } else if (name == "--server") {
      if (value.empty() || value.find(':') == std::string::npos) {
        return Bad(name, value, "expected HOST:PORT, e.g. 127.0.0.1:50051");
      }
      o.server = value;
    } else if (name == "--call") {
      if (value == "translate") o.call = CallKind::kTranslate;
      else if (value == "synthesize") o.call = CallKind::kSynthesize;
      else if (value == "speech-translate") o.call = CallKind::kSpeechTranslate;
      else if (value == "translate-synthesize") o.call = CallKind::kTranslateSynthesize;
      else {
        return Bad(name, value,
                   "allowed: translate, synthesize, speech-translate, translate-synthesize");
      }
      call_set = true;
    } else if (name == "--concurrency" || name == "-c") {
      absl::StatusOr<int64_t> v = PositiveInt(name, value);
      if (!v.ok()) return v.status();
      if (*v > 100000) return Bad(name, value, "expected at most 100000");
      o.concurrency = static_cast<int>(*v);
    } else if (name == "--total" || name == "-n") {
      absl::StatusOr<int64_t> v = PositiveInt(name, value);
      if (!v.ok()) return v.status();
      o.total = *v;
      total_set = true;
    } else if (name == "--duration" || name == "-z") {
      absl::StatusOr<absl::Duration> d = PositiveDuration(name, value);
      if (!d.ok()) return d.status();
      o.duration = *d;
    } else if (name == "--rate") {
      double r = 0;
      if (!absl::SimpleAtod(value, &r) || !std::isfinite(r) || r <= 0) {
        return Bad(name, value, "expected a positive number of calls per second");
      }
      o.rate = r;
    } else if (name == "--data" || name == "-d") {
      o.data_json = value;
    } else if (name == "--data-file" || name == "-D") {
      data_file = value;
    } else if (name == "--text") {
      o.texts.push_back(value);
    } else if (name == "--from") {
      o.from = value;
    } else if (name == "--to") {
      o.to = value;
      o.to_set = true;
    } else if (name == "--voice") {
      o.voice = value;
    } else if (name == "--encoding") {
      if (value == "opus") o.encoding = v1::AUDIO_ENCODING_OPUS;
      else if (value == "ogg") o.encoding = v1::AUDIO_ENCODING_OGG_OPUS;
      else if (value == "pcm16") o.encoding = v1::AUDIO_ENCODING_PCM16;
      else return Bad(name, value, "allowed: opus, ogg, pcm16");
    } else if (name == "--sample-rate") {
      absl::StatusOr<int64_t> v = PositiveInt(name, value);
      if (!v.ok()) return v.status();
      o.sample_rate_hz = static_cast<int>(*v);
    } else if (name == "--greedy") {
      o.greedy = true;
    } else if (name == "--beam") {
      absl::StatusOr<int64_t> v = PositiveInt(name, value);
      if (!v.ok()) return v.status();
      o.beam_size = static_cast<int>(*v);
    } else if (name == "--priority") {
      if (value == "high") o.priority = v1::PRIORITY_HIGH;
      else if (value == "normal") o.priority = v1::PRIORITY_NORMAL;
      else if (value == "low") o.priority = v1::PRIORITY_LOW;
      else return Bad(name, value, "allowed: high, normal, low");
      o.priority_set = true;
    } else if (name == "--deadline" || name == "--timeout" || name == "-t") {
      absl::StatusOr<absl::Duration> d = PositiveDuration(name, value);
      if (!d.ok()) return d.status();
      o.deadline = *d;
    } else if (name == "--connect-timeout") {
      absl::StatusOr<absl::Duration> d = PositiveDuration(name, value);
      if (!d.ok()) return d.status();
      o.connect_timeout = *d;
    } else if (name == "--lb") {
      if (value == "pick_first") o.lb = LoadBalancing::kPickFirst;
      else if (value == "round_robin") o.lb = LoadBalancing::kRoundRobin;
      else return Bad(name, value, "allowed: pick_first, round_robin");
    } else if (name == "--format" || name == "-O") {
      if (value == "text") o.format = ReportFormat::kText;
      else if (value == "json") o.format = ReportFormat::kJson;
      else return Bad(name, value, "allowed: text, json");
    } else if (name == "--out" || name == "-o") {
      if (value.empty()) return Bad(name, value, "expected a file name");
      o.out = value;
    } else if (name == "--no-progress") {
      o.progress = false;
    } else if (name == "--no-details") {
      o.details = false;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", name, "' (see --help)"));
    }
  }
  if (o.help) return o;
  if (o.server.empty()) return absl::InvalidArgumentError("--server HOST:PORT is required");
  if (!call_set) {
    return absl::InvalidArgumentError(
        "--call is required: one of translate, synthesize, speech-translate, "
        "translate-synthesize");
  }
  if (!total_set && o.duration == absl::ZeroDuration()) o.total = 200;
  if (!o.data_json.empty() && !data_file.empty()) {
    return absl::InvalidArgumentError("give --data or --data-file, not both");
  }
  if (!data_file.empty()) {
    std::ifstream in(data_file);
    if (!in) return Bad("--data-file", data_file, "the file cannot be read");
    std::stringstream s;
    s << in.rdbuf();
    o.data_json = s.str();
  }
  if (!o.data_json.empty() && !o.texts.empty()) {
    return absl::InvalidArgumentError("give the request as --data or as --text, not both");
  }
  if (o.call == CallKind::kSynthesize && o.to_set) {
    return absl::InvalidArgumentError(
        "--to does not apply to --call synthesize (--from is the language of the text)");
  }
  if (o.call == CallKind::kTranslate &&
      (!o.voice.empty() || o.encoding != v1::AUDIO_ENCODING_UNSPECIFIED ||
       o.sample_rate_hz != 0 || o.greedy)) {
    return absl::InvalidArgumentError(
        "--voice, --encoding, --sample-rate and --greedy do not apply to --call translate");
  }
  if (o.call == CallKind::kSynthesize && o.beam_size != 0) {
    return absl::InvalidArgumentError("--beam does not apply to --call synthesize");
  }
  return o;
}

namespace {

template <typename Message>
absl::Status ParseMessage(const nlohmann::json& value, const std::string& where, Message* out) {
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--data", where, ": expected a JSON object (", Message::descriptor()->full_name(),
                     "), got ", value.type_name()));
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(value.dump(), out, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--data", where, ": not a ",
                                                   Message::descriptor()->full_name(), ": ",
                                                   std::string(status.message())));
  }
  return absl::OkStatus();
}

template <typename Message>
absl::StatusOr<std::vector<Message>> ParseMessages(const std::string& json) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("--data: not valid JSON");
  std::vector<Message> out;
  if (doc.is_array()) {
    if (doc.empty()) return absl::InvalidArgumentError("--data: the array is empty");
    for (size_t i = 0; i < doc.size(); ++i) {
      Message m;
      absl::Status s = ParseMessage(doc[i], absl::StrCat("[", i, "]"), &m);
      if (!s.ok()) return s;
      out.push_back(std::move(m));
    }
  } else {
    Message m;
    absl::Status s = ParseMessage(doc, "", &m);
    if (!s.ok()) return s;
    out.push_back(std::move(m));
  }
  return out;
}

void ApplyAudio(const BenchOptions& o, v1::AudioConfig* audio) {
  if (o.encoding != v1::AUDIO_ENCODING_UNSPECIFIED) audio->set_encoding(o.encoding);
  if (o.sample_rate_hz != 0) audio->set_sample_rate_hz(o.sample_rate_hz);
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

}  // namespace

absl::StatusOr<RequestPlan> BuildRequests(const BenchOptions& o) {
  RequestPlan plan;
  const std::vector<std::string> texts =
      o.texts.empty() ? std::vector<std::string>{kDefaultText} : o.texts;
  switch (o.call) {
    case CallKind::kTranslate: {
      if (!o.data_json.empty()) {
        absl::StatusOr<std::vector<v1::TranslateRequest>> r =
            ParseMessages<v1::TranslateRequest>(o.data_json);
        if (!r.ok()) return r.status();
        plan.translate = std::move(*r);
      } else {
        v1::TranslateRequest r;
        for (const std::string& t : texts) r.add_texts(t);
        r.set_source_language(o.from);
        r.set_target_language(o.to);
        if (o.beam_size != 0) r.mutable_options()->set_beam_size(o.beam_size);
        plan.translate.push_back(std::move(r));
      }
      for (v1::TranslateRequest& r : plan.translate) {
        if (o.priority_set) r.set_priority(o.priority);
      }
      plan.data_json = ToJson(plan.translate.front());
      break;
    }
    case CallKind::kSynthesize: {
      if (!o.data_json.empty()) {
        absl::StatusOr<std::vector<v1::SynthesizeRequest>> r =
            ParseMessages<v1::SynthesizeRequest>(o.data_json);
        if (!r.ok()) return r.status();
        plan.synthesize = std::move(*r);
      } else {
        for (const std::string& t : texts) {
          v1::SynthesizeRequest r;
          r.set_text(t);
          r.set_language(o.from);
          r.set_voice(o.voice);
          ApplyAudio(o, r.mutable_audio());
          if (o.greedy) r.mutable_options()->set_greedy(true);
          plan.synthesize.push_back(std::move(r));
        }
      }
      for (v1::SynthesizeRequest& r : plan.synthesize) {
        if (o.priority_set) r.set_priority(o.priority);
      }
      plan.data_json = ToJson(plan.synthesize.front());
      break;
    }
    case CallKind::kSpeechTranslate:
    case CallKind::kTranslateSynthesize: {
      if (!o.data_json.empty()) {
        absl::StatusOr<std::vector<v1::SpeechTranslateRequest>> r =
            ParseMessages<v1::SpeechTranslateRequest>(o.data_json);
        if (!r.ok()) return r.status();
        plan.session = std::move(*r);
        if (!plan.session.front().has_config()) {
          return absl::InvalidArgumentError(
              "--data[0]: the first SpeechTranslateRequest must be {\"config\": {...}}");
        }
        for (size_t i = 1; i < plan.session.size(); ++i) {
          if (!plan.session[i].has_segment()) {
            return absl::InvalidArgumentError(absl::StrCat(
                "--data[", i, "]: every SpeechTranslateRequest after the first must be "
                "{\"segment\": {\"segment_id\": N, \"text\": \"...\"}}"));
          }
        }
      } else {
        v1::SpeechTranslateRequest config;
        v1::SpeechTranslateConfig* c = config.mutable_config();
        c->set_source_language(o.from);
        c->set_target_language(o.to);
        c->set_voice(o.voice);
        ApplyAudio(o, c->mutable_audio());
        if (o.greedy) c->mutable_synthesis_options()->set_greedy(true);
        if (o.beam_size != 0) c->mutable_translate_options()->set_beam_size(o.beam_size);
        plan.session.push_back(std::move(config));
        for (size_t i = 0; i < texts.size(); ++i) {
          v1::SpeechTranslateRequest seg;
          seg.mutable_segment()->set_segment_id(i + 1);
          seg.mutable_segment()->set_text(texts[i]);
          plan.session.push_back(std::move(seg));
        }
      }
      if (o.priority_set) plan.session.front().mutable_config()->set_priority(o.priority);
      nlohmann::json all = nlohmann::json::array();
      for (const auto& m : plan.session) {
        all.push_back(nlohmann::json::parse(ToJson(m), nullptr, false));
      }
      plan.data_json = all.dump();
      break;
    }
  }
  return plan;
}

}  // namespace vox::bench
