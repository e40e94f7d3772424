// Streams XTTS utterances through vox's engine and writes what came out, for the comparison with
// Coqui (test_coqui_fidelity.py): the engine's Synthesize stream (the float samples voxd hands to
// its Opus encoder, in the order they were streamed) and the codes the stepper chose.
//
//   xtts_stream_dump --model DIR --out DIR [--repetition-penalty P] [--sampled]
//                    [--clone NAME=RATE:FILE[,RATE:FILE...]]... < cases.tsv
//
// cases.tsv: one utterance per line, "voice<TAB>nllb language<TAB>text". Greedy unless --sampled.
// For case i it writes OUT/case_i.f32 (float32 little-endian samples at 24 kHz) and prints one JSON
// line: {"case": i, "codes": [...], "margins": [...], "samples": n, "chunks": k}, where margins[j]
// is the top-1 minus top-2 logit of code j after the repetition penalty (what greedy decoding
// compares), to spot near-ties.
// --clone makes a voice with XttsEngine::CloneVoice from float32 little-endian mono clips (each at
// its RATE), writes OUT/clone_NAME_latent.f32 ([32, d]) and OUT/clone_NAME_speaker.f32 and prints
// {"clone": NAME, "model_id": ..., "rows": r, "dim": d, "seconds": s}; cases whose voice is NAME
// speak with it (SynthesisRequest::cloned_voice).
// Exit status 1 with a message on any engine error. Single-threaded; one engine, loaded once.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engines/core/engine_options.h"
#include "engines/speech/xtts_engine.h"
#include "engines/speech/xtts_sampler.h"

namespace {

constexpr int64_t kStartAudio = 1024;  // gpt_start_audio_token of every XTTS v2 checkpoint

int Fail(const std::string& message) {
  std::cerr << "xtts_stream_dump: " << message << "\n";
  return 1;
}

std::vector<std::string> Split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, sep)) out.push_back(field);
  return out;
}

std::vector<std::string> SplitTabs(const std::string& line) { return Split(line, '\t'); }

bool WriteFloats(const std::string& path, const std::vector<float>& v) {
  std::ofstream file(path, std::ios::binary);
  file.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  return static_cast<bool>(file);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, out;
  float penalty = 0;
  bool sampled = false;
  std::vector<std::string> clones;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) {
      model = argv[++i];
    } else if (a == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else if (a == "--repetition-penalty" && i + 1 < argc) {
      penalty = std::stof(argv[++i]);
    } else if (a == "--sampled") {
      sampled = true;
    } else if (a == "--clone" && i + 1 < argc) {
      clones.push_back(argv[++i]);
    } else {
      return Fail("usage: xtts_stream_dump --model DIR --out DIR [--repetition-penalty P] [--sampled] < cases.tsv");
    }
  }
  if (model.empty() || out.empty()) return Fail("--model and --out are required");

  vox::EngineOptions options;
  options.device = "cpu";
  options.intra_op_threads = 1;
  options.blas_threads = 1;
  auto engine = vox::XttsEngine::Load("xtts", model, options);
  if (!engine.ok()) return Fail(engine.status().ToString());

  std::map<std::string, std::shared_ptr<const vox::ClonedVoice>> cloned;
  for (const std::string& spec : clones) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos) return Fail("--clone " + spec + ": expected NAME=RATE:FILE[,RATE:FILE...]");
    const std::string name = spec.substr(0, eq);
    std::vector<vox::ReferenceClip> clips;
    for (const std::string& item : Split(spec.substr(eq + 1), ',')) {
      const size_t colon = item.find(':');
      if (colon == std::string::npos) return Fail("--clone " + spec + ": expected RATE:FILE");
      vox::ReferenceClip clip;
      clip.sample_rate = std::stoi(item.substr(0, colon));
      std::ifstream file(item.substr(colon + 1), std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
      if (!file.eof() && !file) return Fail("cannot read " + item.substr(colon + 1));
      clip.samples.resize(bytes.size() / sizeof(float));
      std::memcpy(clip.samples.data(), bytes.data(), clip.samples.size() * sizeof(float));
      clips.push_back(std::move(clip));
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto voice = (*engine)->CloneVoice(clips);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!voice.ok()) return Fail("--clone " + name + ": " + voice.status().ToString());
    if (!WriteFloats(out + "/clone_" + name + "_latent.f32", voice->gpt_cond_latent) ||
        !WriteFloats(out + "/clone_" + name + "_speaker.f32", voice->speaker_embedding)) {
      return Fail("cannot write the cloned voice " + name + " under " + out);
    }
    std::cout << "{\"clone\": \"" << name << "\", \"model_id\": \"" << voice->model_id << "\", \"rows\": "
              << voice->cond_rows << ", \"dim\": " << voice->cond_dim << ", \"seconds\": " << seconds << "}"
              << std::endl;
    cloned[name] = std::make_shared<const vox::ClonedVoice>(*std::move(voice));
  }

  std::vector<int64_t> codes;
  std::vector<float> margins;
  // A greedy sampler that follows the engine's codes: its Warp applies the same repetition penalty.
  vox::SamplingSettings settings;
  settings.greedy = true;
  settings.repetition_penalty = penalty > 0 ? vox::DecimalDouble(penalty) : 5.0;
  std::unique_ptr<vox::CodeSampler> shadow;
  vox::XttsCodeProbe probe;
  probe.fed = [&](uint64_t, int64_t, absl::Span<const float> logits, int64_t code) {
    codes.push_back(code);
    std::vector<float> l = shadow->Warp(logits);
    std::partial_sort(l.begin(), l.begin() + 2, l.end(), std::greater<float>());
    margins.push_back(l[0] - l[1]);
    shadow->Record(code);
  };
  (*engine)->set_code_probe(probe);

  std::string line;
  for (int index = 0; std::getline(std::cin, line); ++index) {
    const std::vector<std::string> f = SplitTabs(line);
    if (f.size() != 3) return Fail("line " + std::to_string(index + 1) + ": expected voice<TAB>language<TAB>text");
    vox::SynthesisRequest request;
    request.voice = f[0];
    if (auto it = cloned.find(f[0]); it != cloned.end()) request.cloned_voice = it->second;
    request.language = f[1];
    request.text = f[2];
    request.params.greedy = !sampled;
    request.params.seed = 1;
    request.params.repetition_penalty = penalty;
    codes.clear();
    margins.clear();
    shadow = std::make_unique<vox::CodeSampler>(settings, 0, kStartAudio);
    std::vector<float> samples;
    auto stats = (*engine)->Synthesize(
        request,
        [&](absl::Span<const float> s) {
          samples.insert(samples.end(), s.begin(), s.end());
          return true;
        },
        [] { return absl::OkStatus(); });
    if (!stats.ok()) return Fail("case " + std::to_string(index) + ": " + stats.status().ToString());
    const std::string path = out + "/case_" + std::to_string(index) + ".f32";
    std::ofstream file(path, std::ios::binary);
    file.write(reinterpret_cast<const char*>(samples.data()),
               static_cast<std::streamsize>(samples.size() * sizeof(float)));
    if (!file) return Fail("cannot write " + path);
    std::ostringstream json;
    json << "{\"case\": " << index << ", \"codes\": [";
    for (size_t i = 0; i < codes.size(); ++i) json << (i ? ", " : "") << codes[i];
    json << "], \"margins\": [";
    for (size_t i = 0; i < margins.size(); ++i) json << (i ? ", " : "") << margins[i];
    json << "], \"samples\": " << samples.size() << ", \"chunks\": " << (*engine)->last_chunks().size()
         << "}";
    std::cout << json.str() << std::endl;
  }
  return 0;
}
