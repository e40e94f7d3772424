// voxctl: command-line client for voxd (vox.v1).
//
//   voxctl [--server HOST:PORT] [--timeout SECONDS] [--request-id ID] [TLS and token flags]
//          COMMAND [ARGS]
//   voxctl translate --from eng_Latn --to fra_Latn [--beam N] [--max-length N]
//                    [--length-penalty F] "text" ...        (no text: one text per stdin line)
//   voxctl speak --lang eng_Latn [--voice NAME] [--greedy] [--seed N] [--rate HZ]
//                --out FILE.ogg|FILE.opus|FILE.wav "text"      (SSML when it starts with <speak)
//   voxctl speak-stream --lang eng_Latn [speak's flags] --out FILE   (live text: stdin lines)
//   voxctl speech-translate --from eng_Latn --to spa_Latn [--voice NAME] --out FILE.ogg
//                           [TEXT ...]             (no text: one segment per stdin line)
//   voxctl languages | voices [--lang CODE] | models
//   voxctl voice create --name NAME [--lang CODE ...] [--model M] [--format wav|ogg|raw]
//                       [--rate HZ] FILE ...      (each FILE one reference clip; "-" = stdin)
//   voxctl voice list [--lang CODE] | voice get NAME | voice delete NAME
//
// Exit status: 0 on success, 1 when the server answered with an error (printed as
// "voxctl: <STATUS_NAME>: <message>"), 2 for a usage error.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "clients/common/client_credentials.h"
#include "vox/v1/discovery.grpc.pb.h"
#include "vox/v1/speech.grpc.pb.h"
#include "vox/v1/speech_translation.grpc.pb.h"
#include "vox/v1/translation.grpc.pb.h"
#include "vox/v1/voice.grpc.pb.h"

namespace {

constexpr char kUsage[] = R"(usage: voxctl [--server HOST:PORT] [--timeout SECONDS] [--request-id ID] COMMAND ...

commands:
  translate --from CODE --to CODE [--beam N] [--max-length N] [--length-penalty F] [TEXT ...]
        translates each TEXT (or each line of stdin when none is given); prints one
        translation per line, in order
  speak --lang CODE [--voice NAME] [--greedy] [--seed N] [--rate 24000|48000] --out FILE TEXT
        synthesizes TEXT into FILE: .ogg/.opus = Ogg Opus, .wav = 16-bit PCM; prints the time
        to first audio and the real-time factor. A TEXT starting with <speak is SSML
  speak-stream --lang CODE [--voice NAME] [--greedy] [--seed N] [--rate HZ] --out FILE
        live text (SynthesizeStream): each stdin line is sent as it is read; each sentence is
        spoken as soon as it is complete, the rest at end of input; FILE as for speak
  speech-translate --from CODE --to CODE [--voice NAME] --out FILE.ogg [TEXT ...]
        one SpeechTranslate session: each TEXT (or each stdin line) is a segment; prints each
        translation with its timings as it arrives; FILE gets the whole session's Ogg Opus
  languages             lists the languages the server knows (NLLB codes) and what it can do
  voices [--lang CODE]  lists the voices, optionally only those speaking CODE
  models                lists the loaded models with their device and dtype
  voice create --name NAME [--lang CODE ...] [--model M] [--format wav|ogg|raw] [--rate HZ]
               FILE ...
        clones a voice from reference audio (each FILE one clip, 3 to 30 s in all; "-" reads
        stdin; --format defaults to detecting WAV or Ogg Opus, raw needs --rate) into the
        server's voice store; --lang (repeatable) limits its languages
  voice list [--lang CODE]   as voices: built-in and created voices
  voice get NAME             one voice, built-in or created
  voice delete NAME          deletes a created voice

connection (before COMMAND):
%SECURITY%
--server defaults to $VOX_SERVER, else 127.0.0.1:50051. --timeout defaults to 60 seconds.
Errors print the gRPC status name and message and exit 1; usage errors exit 2.
)";

struct Global {
  std::string server;
  vox::ClientSecurity security;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  double timeout_seconds = 60;
  std::string request_id;
};

std::string UsageText() {
  std::string text = kUsage;
  text.replace(text.find("%SECURITY%"), 10, vox::kClientSecurityUsage);
  return text;
}

int Usage(const std::string& problem) {
  std::fprintf(stderr, "voxctl: %s\n\n%s", problem.c_str(), UsageText().c_str());
  return 2;
}

// gRPC's and Abseil's canonical codes share their numbers and names.
std::string StatusName(grpc::StatusCode code) {
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

int Failed(const grpc::Status& status) {
  std::fprintf(stderr, "voxctl: %s: %s\n", StatusName(status.error_code()).c_str(),
               status.error_message().c_str());
  return 1;
}

void Prepare(const Global& g, grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(g.timeout_seconds * 1000)));
  if (!g.request_id.empty()) context->AddMetadata("x-request-id", g.request_id);
}

std::shared_ptr<grpc::Channel> Connect(const Global& g) {
  grpc::ChannelArguments args;
  vox::AddSecurityChannelArgs(g.security, &args);
  return grpc::CreateCustomChannel(g.server, g.credentials, args);
}

// Takes the value of a flag given as "--flag value" or "--flag=value".
bool TakeValue(const std::vector<std::string>& args, size_t* i, const std::string& flag,
               std::string* value, std::string* error) {
  const std::string& arg = args[*i];
  if (arg == flag) {
    if (*i + 1 >= args.size()) {
      *error = absl::StrCat(flag, " needs a value");
      return true;
    }
    *value = args[++*i];
    return true;
  }
  if (absl::StartsWith(arg, flag + "=")) {
    *value = arg.substr(flag.size() + 1);
    return true;
  }
  return false;
}

int Translate(const Global& g, const std::vector<std::string>& args) {
  vox::v1::TranslateRequest request;
  std::vector<std::string> texts;
  bool only_texts = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string value, error;
    if (!only_texts && args[i] == "--") {
      only_texts = true;
    } else if (!only_texts && TakeValue(args, &i, "--from", &value, &error)) {
      if (!error.empty()) return Usage(error);
      request.set_source_language(value);
    } else if (!only_texts && TakeValue(args, &i, "--to", &value, &error)) {
      if (!error.empty()) return Usage(error);
      request.set_target_language(value);
    } else if (!only_texts && TakeValue(args, &i, "--beam", &value, &error)) {
      int n = 0;
      if (!error.empty()) return Usage(error);
      if (!absl::SimpleAtoi(value, &n)) return Usage("--beam: '" + value + "' is not an integer");
      request.mutable_options()->set_beam_size(n);
    } else if (!only_texts && TakeValue(args, &i, "--max-length", &value, &error)) {
      int n = 0;
      if (!error.empty()) return Usage(error);
      if (!absl::SimpleAtoi(value, &n)) {
        return Usage("--max-length: '" + value + "' is not an integer");
      }
      request.mutable_options()->set_max_length(n);
    } else if (!only_texts && TakeValue(args, &i, "--length-penalty", &value, &error)) {
      float f = 0;
      if (!error.empty()) return Usage(error);
      if (!absl::SimpleAtof(value, &f)) {
        return Usage("--length-penalty: '" + value + "' is not a number");
      }
      request.mutable_options()->set_length_penalty(f);
    } else if (!only_texts && absl::StartsWith(args[i], "--")) {
      return Usage("translate: unknown flag " + args[i] +
                   " (known: --from, --to, --beam, --max-length, --length-penalty)");
    } else {
      texts.push_back(args[i]);
    }
  }
  if (request.source_language().empty() || request.target_language().empty()) {
    return Usage("translate needs --from CODE and --to CODE (NLLB codes such as eng_Latn)");
  }
  if (texts.empty()) {
    std::string line;
    while (std::getline(std::cin, line)) texts.push_back(line);
  }
  for (const std::string& t : texts) request.add_texts(t);
  auto stub = vox::v1::TranslationService::NewStub(Connect(g));
  grpc::ClientContext context;
  Prepare(g, &context);
  vox::v1::TranslateResponse response;
  grpc::Status status = stub->Translate(&context, request, &response);
  if (!status.ok()) return Failed(status);
  for (const auto& t : response.translations()) std::printf("%s\n", t.text().c_str());
  std::fflush(stdout);
  return 0;
}

void PutLe(std::string* s, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A 44-byte WAV header for mono 16-bit PCM.
std::string WavHeader(int sample_rate, uint32_t data_bytes) {
  std::string h = "RIFF";
  PutLe(&h, 36 + data_bytes, 4);
  h += "WAVEfmt ";
  PutLe(&h, 16, 4);
  PutLe(&h, 1, 2);  // PCM
  PutLe(&h, 1, 2);  // mono
  PutLe(&h, static_cast<uint32_t>(sample_rate), 4);
  PutLe(&h, static_cast<uint32_t>(sample_rate) * 2, 4);
  PutLe(&h, 2, 2);
  PutLe(&h, 16, 2);
  h += "data";
  PutLe(&h, data_bytes, 4);
  return h;
}

// speak and speak-stream's flags. Returns -1 when they parsed, else the usage error's exit code.
struct SpeakArgs {
  vox::v1::SynthesizeRequest request;
  std::string out_path;
  bool wav = false;
  std::vector<std::string> texts;
};
int ParseSpeak(const std::string& command, const std::vector<std::string>& args, SpeakArgs* a) {
  vox::v1::SynthesizeRequest& request = a->request;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string value, error;
    if (args[i] == "--greedy") {
      request.mutable_options()->set_greedy(true);
    } else if (TakeValue(args, &i, "--lang", &value, &error)) {
      if (!error.empty()) return Usage(error);
      request.set_language(value);
    } else if (TakeValue(args, &i, "--voice", &value, &error)) {
      if (!error.empty()) return Usage(error);
      request.set_voice(value);
    } else if (TakeValue(args, &i, "--out", &value, &error)) {
      if (!error.empty()) return Usage(error);
      a->out_path = value;
    } else if (TakeValue(args, &i, "--seed", &value, &error)) {
      uint64_t seed = 0;
      if (!error.empty()) return Usage(error);
      if (!absl::SimpleAtoi(value, &seed)) return Usage("--seed: '" + value + "' is not an integer");
      request.mutable_options()->set_seed(seed);
    } else if (TakeValue(args, &i, "--rate", &value, &error)) {
      int rate = 0;
      if (!error.empty()) return Usage(error);
      if (!absl::SimpleAtoi(value, &rate)) return Usage("--rate: '" + value + "' is not an integer");
      request.mutable_audio()->set_sample_rate_hz(rate);
    } else if (absl::StartsWith(args[i], "--")) {
      return Usage(command + ": unknown flag " + args[i] +
                   " (known: --lang, --voice, --greedy, --seed, --rate, --out)");
    } else {
      a->texts.push_back(args[i]);
    }
  }
  if (request.language().empty()) return Usage(command + " needs --lang CODE (e.g. eng_Latn)");
  if (a->out_path.empty()) return Usage(command + " needs --out FILE (.ogg, .opus or .wav)");
  a->wav = absl::EndsWith(a->out_path, ".wav");
  if (!a->wav && !absl::EndsWith(a->out_path, ".ogg") && !absl::EndsWith(a->out_path, ".opus")) {
    return Usage("--out: '" + a->out_path + "' must end in .ogg, .opus or .wav");
  }
  request.mutable_audio()->set_encoding(a->wav ? vox::v1::AUDIO_ENCODING_PCM16
                                               : vox::v1::AUDIO_ENCODING_OGG_OPUS);
  return -1;
}

// What a Synthesize or SynthesizeStream call returned.
struct SpeechResult {
  std::string audio;
  int sample_rate = 0;
  absl::Time first_audio;
  bool have_audio = false;
  vox::v1::SynthesisSummary summary;

  void Add(const vox::v1::SynthesizeResponse& response) {
    if (response.has_header()) {
      sample_rate = response.header().sample_rate_hz();
    } else if (response.has_audio()) {
      if (!have_audio) first_audio = absl::Now();
      have_audio = true;
      audio += response.audio().data();
    } else if (response.has_summary()) {
      summary = response.summary();
    }
  }
};

// Writes the audio file and prints the timings (from `start`, the call's start).
int WriteSpeech(const SpeakArgs& a, const SpeechResult& r, absl::Time start) {
  const absl::Time end = absl::Now();
  std::FILE* f = std::fopen(a.out_path.c_str(), "wb");
  if (f == nullptr) {
    std::fprintf(stderr, "voxctl: cannot write %s\n", a.out_path.c_str());
    return 1;
  }
  if (a.wav) {
    const std::string header = WavHeader(r.sample_rate, static_cast<uint32_t>(r.audio.size()));
    std::fwrite(header.data(), 1, header.size(), f);
  }
  std::fwrite(r.audio.data(), 1, r.audio.size(), f);
  if (std::fclose(f) != 0) {
    std::fprintf(stderr, "voxctl: cannot write %s\n", a.out_path.c_str());
    return 1;
  }
  const double total = absl::ToDoubleSeconds(end - start);
  const vox::v1::SynthesisSummary& summary = r.summary;
  std::printf("wrote %s: %.2f s of audio at %d Hz, voice %s\n", a.out_path.c_str(),
              summary.audio_seconds(), r.sample_rate, summary.voice().c_str());
  std::printf("time to first audio: %.3f s (client), %.3f s (server)\n",
              r.have_audio ? absl::ToDoubleSeconds(r.first_audio - start) : 0.0,
              summary.time_to_first_audio_seconds());
  std::printf("real-time factor: %.3f (client wall %.3f s / audio), %.3f (server)\n",
              summary.audio_seconds() > 0 ? total / summary.audio_seconds() : 0.0, total,
              summary.real_time_factor());
  return 0;
}

int Speak(const Global& g, const std::vector<std::string>& args) {
  SpeakArgs a;
  if (int usage = ParseSpeak("speak", args, &a); usage >= 0) return usage;
  if (a.texts.empty()) return Usage("speak needs the text to say");
  a.request.set_text(absl::StrJoin(a.texts, " "));
  auto stub = vox::v1::SpeechService::NewStub(Connect(g));
  grpc::ClientContext context;
  Prepare(g, &context);
  const absl::Time start = absl::Now();
  auto reader = stub->Synthesize(&context, a.request);
  vox::v1::SynthesizeResponse response;
  SpeechResult result;
  while (reader->Read(&response)) result.Add(response);
  grpc::Status status = reader->Finish();
  if (!status.ok()) return Failed(status);
  return WriteSpeech(a, result, start);
}

// SynthesizeStream: each stdin line (with its newline) is a text piece, sent as it is read.
int SpeakStream(const Global& g, const std::vector<std::string>& args) {
  SpeakArgs a;
  if (int usage = ParseSpeak("speak-stream", args, &a); usage >= 0) return usage;
  if (!a.texts.empty()) return Usage("speak-stream reads its text from stdin, not arguments");
  auto stub = vox::v1::SpeechService::NewStub(Connect(g));
  grpc::ClientContext context;
  Prepare(g, &context);
  const absl::Time start = absl::Now();
  auto call = stub->SynthesizeStream(&context);
  std::thread writer([&] {
    vox::v1::SynthesizeStreamRequest config;
    *config.mutable_config() = a.request;
    bool open = call->Write(config);
    std::string line;
    while (open && std::getline(std::cin, line)) {
      vox::v1::SynthesizeStreamRequest piece;
      piece.set_text(line + "\n");
      open = call->Write(piece);
    }
    call->WritesDone();
  });
  vox::v1::SynthesizeResponse response;
  SpeechResult result;
  while (call->Read(&response)) result.Add(response);
  writer.join();
  grpc::Status status = call->Finish();
  if (!status.ok()) return Failed(status);
  return WriteSpeech(a, result, start);
}

int Languages(const Global& g, const std::vector<std::string>& args) {
  if (!args.empty()) return Usage("languages takes no arguments");
  auto stub = vox::v1::DiscoveryService::NewStub(Connect(g));
  grpc::ClientContext context;
  Prepare(g, &context);
  vox::v1::ListLanguagesResponse response;
  grpc::Status status = stub->ListLanguages(&context, {}, &response);
  if (!status.ok()) return Failed(status);
  for (const auto& l : response.languages()) {
    std::vector<std::string> can;
    if (l.translate_source()) can.push_back("from");
    if (l.translate_target()) can.push_back("to");
    if (l.speech()) can.push_back("speech");
    std::vector<std::string> engines(l.translation_engines().begin(),
                                     l.translation_engines().end());
    for (const auto& e : l.speech_engines()) {
      if (std::find(engines.begin(), engines.end(), e) == engines.end()) engines.push_back(e);
    }
    std::printf("%-10s %-18s %s\n", l.code().c_str(), absl::StrJoin(can, ",").c_str(),
                absl::StrJoin(engines, ",").c_str());
  }
  return 0;
}

// One line per voice: name, languages, model, rate; created voices add when and from how many
// seconds of reference audio.
void PrintVoice(const vox::v1::Voice& v) {
  std::string created;
  if (v.created()) {
    created = absl::StrCat(
        " created ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(v.create_time().seconds()),
                         absl::UTCTimeZone()),
        " from ", absl::StrFormat("%.1f", v.reference_audio_seconds()), " s");
  }
  std::printf("%-24s %-24s %-16s %d Hz%s\n", v.name().c_str(),
              absl::StrJoin(v.languages(), ",").c_str(), v.model().c_str(),
              v.native_sample_rate_hz(), created.c_str());
}

int Voices(const Global& g, const std::vector<std::string>& args) {
  vox::v1::ListVoicesRequest request;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string value, error;
    if (TakeValue(args, &i, "--lang", &value, &error)) {
      if (!error.empty()) return Usage(error);
      request.set_language(value);
    } else {
      return Usage("voices: unexpected argument " + args[i] + " (known: --lang CODE)");
    }
  }
  auto stub = vox::v1::DiscoveryService::NewStub(Connect(g));
  grpc::ClientContext context;
  Prepare(g, &context);
  vox::v1::ListVoicesResponse response;
  grpc::Status status = stub->ListVoices(&context, request, &response);
  if (!status.ok()) return Failed(status);
  for (const auto& v : response.voices()) PrintVoice(v);
  return 0;
}

// voice create: config, then each file's bytes as one clip in 64 KiB chunks.
int CreateVoice(const Global& g, const std::vector<std::string>& args) {
  vox::v1::CreateVoiceConfig config;
  std::vector<std::string> files;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string value, error;
    if (TakeValue(args, &i, "--name", &value, &error)) {
      if (!error.empty()) return Usage(error);
      config.set_name(value);
    } else if (TakeValue(args, &i, "--lang", &value, &error)) {
      if (!error.empty()) return Usage(error);
      config.add_languages(value);
    } else if (TakeValue(args, &i, "--model", &value, &error)) {
      if (!error.empty()) return Usage(error);
      config.set_model(value);
    } else if (TakeValue(args, &i, "--format", &value, &error)) {
      if (!error.empty()) return Usage(error);
      if (value == "wav") {
        config.set_format(vox::v1::REFERENCE_AUDIO_FORMAT_WAV);
      } else if (value == "ogg" || value == "opus") {
        config.set_format(vox::v1::REFERENCE_AUDIO_FORMAT_OGG_OPUS);
      } else if (value == "raw") {
        config.set_format(vox::v1::REFERENCE_AUDIO_FORMAT_RAW_PCM16);
      } else {
        return Usage("--format: '" + value + "' is not one of wav, ogg, raw");
      }
    } else if (TakeValue(args, &i, "--rate", &value, &error)) {
      if (!error.empty()) return Usage(error);
      int rate = 0;
      if (!absl::SimpleAtoi(value, &rate)) return Usage("--rate: '" + value + "' is not an integer");
      config.set_sample_rate_hz(rate);
    } else if (absl::StartsWith(args[i], "--")) {
      return Usage("voice create: unknown flag " + args[i] +
                   " (known: --name, --lang, --model, --format, --rate)");
    } else {
      files.push_back(args[i]);
    }
  }
  if (config.name().empty()) return Usage("voice create needs --name NAME");
  if (files.empty()) return Usage("voice create needs at least one reference audio FILE");
  std::vector<std::string> clips;
  for (const std::string& f : files) {
    std::string bytes;
    if (f == "-") {
      bytes.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      std::ifstream in(f, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "voxctl: cannot read %s\n", f.c_str());
        return 1;
      }
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    clips.push_back(std::move(bytes));
  }
  auto stub = vox::v1::VoiceService::NewStub(Connect(g));
  grpc::ClientContext context;
  Prepare(g, &context);
  vox::v1::Voice voice;
  auto writer = stub->CreateVoice(&context, &voice);
  vox::v1::CreateVoiceRequest first;
  *first.mutable_config() = config;
  bool ok = writer->Write(first);
  constexpr size_t kChunk = 64 << 10;
  for (size_t c = 0; c < clips.size() && ok; ++c) {
    for (size_t at = 0; at < clips[c].size() && ok; at += kChunk) {
      vox::v1::CreateVoiceRequest r;
      r.mutable_audio()->set_clip(static_cast<int>(c));
      r.mutable_audio()->set_data(clips[c].substr(at, kChunk));
      ok = writer->Write(r);
    }
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return Failed(status);
  PrintVoice(voice);
  return 0;
}

int VoiceCommand(const Global& g, const std::vector<std::string>& args) {
  if (args.empty()) return Usage("voice needs a subcommand: create, list, get or delete");
  const std::string sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "create") return CreateVoice(g, rest);
  if (sub == "list") return Voices(g, rest);
  if (sub != "get" && sub != "delete") {
    return Usage("voice: unknown subcommand '" + sub + "' (known: create, list, get, delete)");
  }
  if (rest.size() != 1) return Usage("voice " + sub + " takes one voice NAME");
  auto stub = vox::v1::VoiceService::NewStub(Connect(g));
  grpc::ClientContext context;
  Prepare(g, &context);
  if (sub == "get") {
    vox::v1::GetVoiceRequest request;
    request.set_name(rest[0]);
    vox::v1::Voice voice;
    grpc::Status status = stub->GetVoice(&context, request, &voice);
    if (!status.ok()) return Failed(status);
    PrintVoice(voice);
    return 0;
  }
  vox::v1::DeleteVoiceRequest request;
  request.set_name(rest[0]);
  vox::v1::DeleteVoiceResponse response;
  grpc::Status status = stub->DeleteVoice(&context, request, &response);
  if (!status.ok()) return Failed(status);
  std::printf("deleted %s\n", rest[0].c_str());
  return 0;
}

int Models(const Global& g, const std::vector<std::string>& args) {
  if (!args.empty()) return Usage("models takes no arguments");
  auto stub = vox::v1::DiscoveryService::NewStub(Connect(g));
  grpc::ClientContext context;
  Prepare(g, &context);
  vox::v1::ListModelsResponse response;
  grpc::Status status = stub->ListModels(&context, {}, &response);
  if (!status.ok()) return Failed(status);
  for (const auto& m : response.models()) {
    std::printf("%-24s %-12s %-14s device=%s dtype=%s weights=%s languages=%d%s path=%s\n",
                m.name().c_str(), m.kind().c_str(), m.architecture().c_str(), m.device().c_str(),
                m.dtype().c_str(), m.weights().c_str(), m.languages_size(), m.fallback() ? " fallback" : "",
                m.path().c_str());
  }
  return 0;
}
// One SpeechTranslate session. A writer thread sends the segments (stdin lines are sent as they
// are typed) while this thread prints what comes back.
int SpeechTranslate(const Global& g, const std::vector<std::string>& args) {
  vox::v1::SpeechTranslateRequest config_msg;
  vox::v1::SpeechTranslateConfig* config = config_msg.mutable_config();
  std::string out_path;
  std::vector<std::string> texts;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string value, error;
    if (TakeValue(args, &i, "--from", &value, &error)) {
      if (!error.empty()) return Usage(error);
      config->set_source_language(value);
    } else if (TakeValue(args, &i, "--to", &value, &error)) {
      if (!error.empty()) return Usage(error);
      config->set_target_language(value);
    } else if (TakeValue(args, &i, "--voice", &value, &error)) {
      if (!error.empty()) return Usage(error);
      config->set_voice(value);
    } else if (TakeValue(args, &i, "--out", &value, &error)) {
      if (!error.empty()) return Usage(error);
      out_path = value;
    } else if (absl::StartsWith(args[i], "--")) {
      return Usage("speech-translate: unknown flag " + args[i] +
                   " (known: --from, --to, --voice, --out)");
    } else {
      texts.push_back(args[i]);
    }
  }
  if (config->source_language().empty() || config->target_language().empty()) {
    return Usage("speech-translate needs --from CODE and --to CODE (NLLB codes such as eng_Latn)");
  }
  if (!absl::EndsWith(out_path, ".ogg") && !absl::EndsWith(out_path, ".opus")) {
    return Usage("speech-translate needs --out FILE ending in .ogg or .opus (got '" + out_path +
                 "')");
  }
  config->mutable_audio()->set_encoding(vox::v1::AUDIO_ENCODING_OGG_OPUS);
  std::FILE* f = std::fopen(out_path.c_str(), "wb");
  if (f == nullptr) {
    std::fprintf(stderr, "voxctl: cannot write %s\n", out_path.c_str());
    return 1;
  }
  auto stub = vox::v1::SpeechTranslationService::NewStub(Connect(g));
  grpc::ClientContext context;
  Prepare(g, &context);
  auto stream = stub->SpeechTranslate(&context);
  std::thread writer([&] {
    if (!stream->Write(config_msg)) return;
    uint64_t id = 0;
    auto send = [&](const std::string& text) {
      vox::v1::SpeechTranslateRequest r;
      r.mutable_segment()->set_segment_id(id++);
      r.mutable_segment()->set_text(text);
      return stream->Write(r);
    };
    if (!texts.empty()) {
      for (const std::string& t : texts) {
        if (!send(t)) return;
      }
    } else {
      std::string line;
      while (std::getline(std::cin, line)) {
        if (!send(line)) return;
      }
    }
    stream->WritesDone();
  });
  vox::v1::SpeechTranslateResponse response;
  bool write_ok = true;
  while (stream->Read(&response)) {
    if (response.has_translation()) {
      std::printf("[%llu] %s\n",
                  static_cast<unsigned long long>(response.translation().segment_id()),
                  response.translation().text().c_str());
    } else if (response.has_audio()) {
      const std::string& data = response.audio().chunk().data();
      if (std::fwrite(data.data(), 1, data.size(), f) != data.size()) write_ok = false;
    } else if (response.has_segment_end()) {
      const vox::v1::SegmentTimings& t = response.segment_end().timings();
      std::printf("[%llu] queue %.3f s, translation %.3f s, first audio %.3f s, synthesis %.3f s, "
                  "audio %.2f s, total %.3f s\n",
                  static_cast<unsigned long long>(response.segment_end().segment_id()),
                  t.queue_seconds(), t.translation_seconds(), t.time_to_first_audio_seconds(),
                  t.synthesis_seconds(), t.audio_seconds(), t.total_seconds());
    }
    std::fflush(stdout);
  }
  grpc::Status status = stream->Finish();
  if (!status.ok()) {
    // The writer may be blocked on stdin for good: report and leave without waiting for it.
    writer.detach();
    std::fclose(f);
    const int rc = Failed(status);
    std::fflush(nullptr);
    std::_Exit(rc);
  }
  writer.join();  // OK means the server saw the half-close: the writer is done
  if (std::fclose(f) != 0) write_ok = false;
  if (!write_ok) {
    std::fprintf(stderr, "voxctl: cannot write %s\n", out_path.c_str());
    return 1;
  }
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Global g;
  const char* env = std::getenv("VOX_SERVER");
  g.server = env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  std::vector<std::string> args(argv + 1, argv + argc);
  size_t i = 0;
  for (; i < args.size(); ++i) {
    std::string value, error;
    if (args[i] == "--help" || args[i] == "-h") {
      std::fputs(UsageText().c_str(), stdout);
      return 0;
    } else if (vox::ParseClientSecurityFlag(args, &i, &g.security, &error)) {
      if (!error.empty()) return Usage(error);
    } else if (TakeValue(args, &i, "--server", &value, &error)) {
      if (!error.empty()) return Usage(error);
      g.server = value;
    } else if (TakeValue(args, &i, "--timeout", &value, &error)) {
      if (!error.empty()) return Usage(error);
      if (!absl::SimpleAtod(value, &g.timeout_seconds) || g.timeout_seconds <= 0) {
        return Usage("--timeout: '" + value + "' is not a positive number of seconds");
      }
    } else if (TakeValue(args, &i, "--request-id", &value, &error)) {
      if (!error.empty()) return Usage(error);
      g.request_id = value;
    } else if (absl::StartsWith(args[i], "-")) {
      return Usage("unknown flag " + args[i] +
                   " (known: --server, --timeout, --request-id, --tls, --tls-ca, --tls-cert, "
                   "--tls-key, --tls-server-name, --token-file)");
    } else {
      break;
    }
  }
  if (i >= args.size()) return Usage("no command given");
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      vox::ChannelCredentialsFor(g.security);
  if (!credentials.ok()) return Usage(std::string(credentials.status().message()));
  g.credentials = std::move(*credentials);
  const std::string command = args[i];
  const std::vector<std::string> rest(args.begin() + i + 1, args.end());
  if (command == "translate") return Translate(g, rest);
  if (command == "languages") return Languages(g, rest);
  if (command == "voices") return Voices(g, rest);
  if (command == "models") return Models(g, rest);
  if (command == "voice") return VoiceCommand(g, rest);
  if (command == "speak") return Speak(g, rest);
  if (command == "speak-stream") return SpeakStream(g, rest);
  if (command == "speech-translate") return SpeechTranslate(g, rest);
  return Usage("unknown command '" + command +
               "' (known: translate, speak, speak-stream, speech-translate, languages, voices, models, "
               "voice)");
}
