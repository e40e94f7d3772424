// vox_stream_bench: the first sentence's first audio through SynthesizeStream, fed one word at a
// time, against Synthesize of that sentence alone, on a running voxd.
//
//   vox_stream_bench --server HOST:PORT [--lang eng_Latn] [--voice NAME] [--iters 20]
//       [--warmup 3] [--forced-codes N] [--word-gap-ms 0] [--text "First sentence. More..."]
//
// Each iteration runs, one after the other (never overlapping):
//   synthesize  Synthesize(first sentence): call start to the first audio message with samples;
//   stream      SynthesizeStream: config, then each word of --text with a trailing space (one
//               message each, --word-gap-ms apart); from just before the write of the piece that
//               completes the first sentence (its last word and the space after it) to the first
//               audio message with samples; then the other words, half-close, read to the end.
// Prints the median, p90 and mean of both, and median(stream) / median(synthesize).
// Exit status: 0, 1 on a failed call, 2 on a bad command line.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "vox/v1/speech.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string server;
  std::string lang = "eng_Latn";
  std::string voice;
  std::string text =
      "The weather today is sunny with a light breeze from the west. Later this afternoon "
      "clouds will gather, and by the evening we expect some rain.";
  int iters = 20;
  int warmup = 3;
  int forced_codes = 0;
  int word_gap_ms = 0;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return false;
    const std::string v = argv[++i];
    if (flag == "--server") a->server = v;
    else if (flag == "--lang") a->lang = v;
    else if (flag == "--voice") a->voice = v;
    else if (flag == "--text") a->text = v;
    else if (flag == "--iters" && absl::SimpleAtoi(v, &a->iters) && a->iters > 0) {}
    else if (flag == "--warmup" && absl::SimpleAtoi(v, &a->warmup) && a->warmup >= 0) {}
    else if (flag == "--forced-codes" && absl::SimpleAtoi(v, &a->forced_codes)) {}
    else if (flag == "--word-gap-ms" && absl::SimpleAtoi(v, &a->word_gap_ms)) {}
    else return false;
  }
  return !a->server.empty();
}

vox::v1::SynthesizeRequest Request(const Args& a, const std::string& text) {
  vox::v1::SynthesizeRequest r;
  r.set_text(text);
  r.set_language(a.lang);
  r.set_voice(a.voice);
  r.mutable_options()->set_greedy(true);
  r.mutable_options()->set_forced_codes(a.forced_codes);
  return r;
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Synthesize(sentence): milliseconds to the first audio with samples, or -1.
double SynthesizeFirstAudio(vox::v1::SpeechService::Stub* stub, const Args& a,
                            const std::string& sentence) {
  grpc::ClientContext context;
  const Clock::time_point start = Clock::now();
  auto reader = stub->Synthesize(&context, Request(a, sentence));
  vox::v1::SynthesizeResponse msg;
  double first = -1;
  while (reader->Read(&msg)) {
    if (first < 0 && msg.has_audio() && msg.audio().num_samples() > 0) {
      first = Ms(Clock::now() - start);
    }
  }
  const grpc::Status s = reader->Finish();
  if (!s.ok()) {
    std::fprintf(stderr, "Synthesize failed: %s\n", s.error_message().c_str());
    return -1;
  }
  return first;
}

// SynthesizeStream word by word: milliseconds from the completing piece to the first audio.
double StreamFirstAudio(vox::v1::SpeechService::Stub* stub, const Args& a,
                        const std::vector<std::string>& words, size_t completing) {
  grpc::ClientContext context;
  auto call = stub->SynthesizeStream(&context);
  std::atomic<int64_t> first_audio_ns{0};
  std::thread reader([&] {
    vox::v1::SynthesizeResponse msg;
    while (call->Read(&msg)) {
      if (first_audio_ns.load() == 0 && msg.has_audio() && msg.audio().num_samples() > 0) {
        first_audio_ns.store(Clock::now().time_since_epoch().count());
      }
    }
  });
  vox::v1::SynthesizeStreamRequest config;
  *config.mutable_config() = Request(a, "");
  call->Write(config);
  Clock::time_point completed{};
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0 && a.word_gap_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(a.word_gap_ms));
    }
    vox::v1::SynthesizeStreamRequest piece;
    piece.set_text(words[i] + " ");
    if (i == completing) completed = Clock::now();
    if (!call->Write(piece)) break;
  }
  call->WritesDone();
  reader.join();
  const grpc::Status s = call->Finish();
  if (!s.ok() || first_audio_ns.load() == 0) {
    std::fprintf(stderr, "SynthesizeStream failed: %s\n", s.error_message().c_str());
    return -1;
  }
  return Ms(Clock::time_point(Clock::duration(first_audio_ns.load())) - completed);
}

struct Stats {
  double median, p90, mean;
};
Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  const auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  return {v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2, at(0.9),
          sum / v.size()};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!ParseArgs(argc, argv, &a)) {
    std::fprintf(stderr,
                 "usage: vox_stream_bench --server HOST:PORT [--lang eng_Latn] [--voice NAME] "
                 "[--iters 20] [--warmup 3] [--forced-codes N] [--word-gap-ms 0] [--text T]\n");
    return 2;
  }
  const std::vector<std::string> words = absl::StrSplit(a.text, ' ', absl::SkipEmpty());
  size_t completing = words.size();
  std::string sentence;
  for (size_t i = 0; i < words.size(); ++i) {
    sentence += (i ? " " : "") + words[i];
    const char last = words[i].back();
    if (last == '.' || last == '!' || last == '?') {
      completing = i;
      break;
    }
  }
  if (completing + 1 >= words.size()) {
    std::fprintf(stderr, "--text needs a first sentence ending in . ! or ? and more after it\n");
    return 2;
  }
  auto stub = vox::v1::SpeechService::NewStub(
      grpc::CreateChannel(a.server, grpc::InsecureChannelCredentials()));
  std::vector<double> synth, stream;
  for (int i = 0; i < a.warmup + a.iters; ++i) {
    const double s = SynthesizeFirstAudio(stub.get(), a, sentence);
    const double t = StreamFirstAudio(stub.get(), a, words, completing);
    if (s < 0 || t < 0) return 1;
    if (i >= a.warmup) {
      synth.push_back(s);
      stream.push_back(t);
    }
  }
  const Stats s = Summarize(synth), t = Summarize(stream);
  std::printf("first sentence: \"%s\" (%zu words, then %zu more)\n", sentence.c_str(),
              completing + 1, words.size() - completing - 1);
  std::printf("%-40s median %8.2f ms  p90 %8.2f ms  mean %8.2f ms  (n=%zu)\n",
              "Synthesize(first sentence) first audio", s.median, s.p90, s.mean, synth.size());
  std::printf("%-40s median %8.2f ms  p90 %8.2f ms  mean %8.2f ms  (n=%zu)\n",
              "SynthesizeStream word by word", t.median, t.p90, t.mean, stream.size());
  std::printf("ratio of medians (stream / synthesize): %.3f\n", t.median / s.median);
  return 0;
}
