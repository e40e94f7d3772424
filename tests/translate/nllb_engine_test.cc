// The NLLB engine against the tiny model and the goldens written by the Python eager reference
// (tools/nllb_reference.py via tools/tiny_nllb.py). Token ids must match exactly; logits within
// tolerances; every failure prints the case.
#include "engines/translate/nllb_engine.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engines/core/engine_options.h"
#include "engines/torch/device.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/resident_memory.h"
#include "tests/translate/test_util.h"

namespace vox {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using vox::testing::GoldenBf16Path;
using vox::testing::GoldenInt8Path;
using vox::testing::GoldenPath;
using vox::testing::ReadJson;
using vox::testing::TestDevice;
using vox::testing::TinyBf16Dir;
using vox::testing::TinyInt8Dir;
using vox::testing::TinyModelDir;

std::vector<int64_t> Ids(const nlohmann::json& j) { return j.get<std::vector<int64_t>>(); }

class NllbEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineOptions options;
    options.device = TestDevice();
    auto engine = NllbEngine::Load("nllb-tiny", TinyModelDir(), options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = engine->release();
    golden_ = new nlohmann::json(ReadJson(GoldenPath()));
    ASSERT_EQ((*golden_)["format"], 1);
    ASSERT_GE((*golden_)["cases"].size(), 5u);
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete golden_;
  }
  static const nlohmann::json& cases() { return (*golden_)["cases"]; }

  static std::vector<int64_t> TranslateOne(const nlohmann::json& c, const TranslationParams& p) {
    auto out = engine_->Translate({c["text"].get<std::string>()}, c["source"], c["target"], p,
                                  nullptr);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    EXPECT_EQ(out->size(), 1u);
    return (*out)[0].token_ids;
  }

  static NllbEngine* engine_;
  static nlohmann::json* golden_;
};
NllbEngine* NllbEngineTest::engine_ = nullptr;
nlohmann::json* NllbEngineTest::golden_ = nullptr;

TEST_F(NllbEngineTest, InfoDescribesTheModel) {
  const ModelInfo& info = engine_->info();
  EXPECT_EQ(info.name, "nllb-tiny");
  EXPECT_EQ(info.kind, "translation");
  EXPECT_EQ(info.architecture, "nllb-m2m100");
  EXPECT_EQ(info.device, ResolveDevice(TestDevice()).value().name());
  EXPECT_EQ(info.dtype, "float32");
  EXPECT_EQ(info.languages.size(), 202u);  // FAIRSEQ_LANGUAGE_CODES
  EXPECT_TRUE(engine_->SupportsPair("eng_Latn", "fra_Latn"));
  EXPECT_FALSE(engine_->SupportsPair("eng_Latn", "xxx_Latn"));
}

TEST_F(NllbEngineTest, TokenizerIdsMatchPythonSentencePiece) {
  for (const auto& c : cases()) {
    auto ids = engine_->EncodeSource(c["text"], c["source"]);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, Ids(c["src_ids"])) << c["text"];
  }
}

TEST_F(NllbEngineTest, UnknownCharactersBecomeUnk) {
  // U+1F600 is not in the tiny corpus: SentencePiece's unk (0) must map to model id 3.
  auto ids = engine_->EncodeSource("\xF0\x9F\x98\x80", "eng_Latn");
  ASSERT_TRUE(ids.ok());
  EXPECT_THAT(*ids, ::testing::Contains(3));
  EXPECT_EQ(ids->back(), 2);
}

TEST_F(NllbEngineTest, LanguageIdsFollowFairseqOrder) {
  // transformers: id = spm_size + 1 + index in FAIRSEQ_LANGUAGE_CODES (ace_Arab first,
  // eng_Latn 47th, fra_Latn 57th: 256047 and 256057 in the released 256000-piece model).
  const int64_t spm_size = ReadJson(TinyModelDir() + "/manifest.json")["tokenizer"]["spm_size"];
  EXPECT_EQ(engine_->LanguageId("ace_Arab").value(), spm_size + 1);
  EXPECT_EQ(engine_->LanguageId("eng_Latn").value(), spm_size + 47);
  EXPECT_EQ(engine_->LanguageId("fra_Latn").value(), spm_size + 57);
  for (const auto& c : cases()) {
    EXPECT_EQ(engine_->LanguageId(c["target"]).value(), c["tgt_id"].get<int64_t>());
    EXPECT_EQ(engine_->EncodeSource("x", c["source"]).value()[0], c["src_ids"][0].get<int64_t>());
  }
  auto bad = engine_->LanguageId("eng_latn");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), AllOf(HasSubstr("eng_latn"), HasSubstr("eng_Latn")));
}

TEST_F(NllbEngineTest, GreedyMatchesGolden) {
  double smallest_margin = std::numeric_limits<double>::infinity();
  int ended = 0, hit_limit = 0;
  for (const auto& c : cases()) {
    TranslationParams p;
    p.max_length = c["max_length"];
    auto out = engine_->Translate({c["text"].get<std::string>()}, c["source"], c["target"], p,
                                  nullptr);
    ASSERT_TRUE(out.ok()) << out.status();
    const auto& g = c["greedy"];
    EXPECT_EQ((*out)[0].token_ids, Ids(g["ids"]))
        << c["text"] << " (golden min margin " << g["min_margin"] << ")";
    EXPECT_EQ((*out)[0].text, g["text"].get<std::string>()) << c["text"];
    smallest_margin = std::min(smallest_margin, g["min_margin"].get<double>());
    (g["ended_with_eos"].get<bool>() ? ended : hit_limit)++;
  }
  std::printf("greedy goldens: %d ended with </s>, %d hit max_length; smallest golden top-1/top-2 "
              "margin %.6g\n", ended, hit_limit, smallest_margin);
  // The goldens must exercise both ways a decode ends, or the test proves less than it claims.
  EXPECT_GT(ended, 0);
  EXPECT_GT(hit_limit, 0);
}

TEST_F(NllbEngineTest, BeamSearchMatchesGolden) {
  int checked = 0;
  for (const auto& c : cases()) {
    for (const auto& b : c["beams"]) {
      TranslationParams p;
      p.max_length = c["max_length"];
      p.beam_size = b["beam_size"];
      p.length_penalty = b["length_penalty"].get<float>();
      auto out = engine_->Translate({c["text"].get<std::string>()}, c["source"], c["target"], p,
                                    nullptr);
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ((*out)[0].token_ids, Ids(b["ids"]))
          << c["text"] << " beam " << b["beam_size"] << " lp " << b["length_penalty"];
      EXPECT_EQ((*out)[0].text, b["text"].get<std::string>());
      ++checked;
    }
  }
  EXPECT_GE(checked, 20);
}

TEST_F(NllbEngineTest, BeamDiffersFromGreedySomewhere) {
  // Guards the goldens themselves: if beam search always equalled greedy, a beam implementation
  // that silently ran greedy would pass BeamSearchMatchesGolden.
  int differ = 0;
  for (const auto& c : cases()) {
    for (const auto& b : c["beams"]) differ += Ids(b["ids"]) != Ids(c["greedy"]["ids"]);
  }
  EXPECT_GT(differ, 0);
}

TEST_F(NllbEngineTest, FixedLengthIgnoresEosAndMatchesGolden) {
  for (const auto& c : cases()) {
    TranslationParams p;
    p.fixed_length = true;
    p.max_length = c["fixed_length"]["max_length"];
    const auto ids = TranslateOne(c, p);
    EXPECT_EQ(ids, Ids(c["fixed_length"]["ids"])) << c["text"];
    EXPECT_EQ(static_cast<int>(ids.size()), p.max_length);
  }
}

TEST_F(NllbEngineTest, MaxLengthCapsGeneratedTokens) {
  const auto& c = cases()[2];  // runs to the limit in the goldens
  ASSERT_FALSE(c["greedy"]["ended_with_eos"].get<bool>());
  TranslationParams p;
  p.max_length = 7;
  const auto ids = TranslateOne(c, p);
  const auto golden = Ids(c["greedy"]["ids"]);
  EXPECT_EQ(ids, std::vector<int64_t>(golden.begin(), golden.begin() + 7));
}

TEST_F(NllbEngineTest, FirstStepLogitsMatchTheEagerReference) {
  double worst = 0;
  for (const auto& c : cases()) {
    auto logits = engine_->FirstStepLogits({c["text"].get<std::string>()}, c["source"],
                                           c["target"]);
    ASSERT_TRUE(logits.ok()) << logits.status();
    const auto golden = c["greedy"]["first_logits"].get<std::vector<float>>();
    ASSERT_EQ((*logits)[0].size(), golden.size());
    for (size_t v = 0; v < golden.size(); ++v) {
      worst = std::max(worst, static_cast<double>(std::fabs((*logits)[0][v] - golden[v])));
    }
  }
  std::printf("largest |C++ TorchScript - Python eager| first-step logit difference: %.3g\n", worst);
  EXPECT_LT(worst, 1e-4);
}

// Batched equals one by one: every golden text in one batch (one language pair) against each
// text alone. Ids must be identical; logits may differ only by float rounding, to the bound of
// C++ against Python above: a float32 product of up to 64 rows runs vox::linear and a larger one
// (the batch's encoder) BLAS's gemm, which sum in other orders (tools/torchscript_linear.py).
TEST_F(NllbEngineTest, BatchedEqualsOneByOne) {
  std::vector<std::string> texts;
  for (const auto& c : cases()) texts.push_back(c["text"]);
  const std::string src = "eng_Latn", tgt = "fra_Latn";

  auto batched_logits = engine_->FirstStepLogits(texts, src, tgt);
  ASSERT_TRUE(batched_logits.ok()) << batched_logits.status();
  double worst = 0, smallest_margin = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < texts.size(); ++i) {
    auto single = engine_->FirstStepLogits({texts[i]}, src, tgt);
    ASSERT_TRUE(single.ok());
    const auto& a = (*batched_logits)[i];
    const auto& b = (*single)[0];
    ASSERT_EQ(a.size(), b.size());
    for (size_t v = 0; v < a.size(); ++v) {
      worst = std::max(worst, static_cast<double>(std::fabs(a[v] - b[v])));
    }
    std::vector<float> sorted = b;
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
    smallest_margin = std::min(smallest_margin, static_cast<double>(sorted[0] - sorted[1]));
  }
  std::printf("batched vs single: largest first-step logit difference %.3g; smallest top-1/top-2 "
              "margin %.6g\n", worst, smallest_margin);
  EXPECT_LT(worst, 1e-4);

  for (int beam : {1, 4}) {
    TranslationParams p;
    p.beam_size = beam;
    p.max_length = 40;
    auto batched = engine_->Translate(texts, src, tgt, p, nullptr);
    ASSERT_TRUE(batched.ok()) << batched.status();
    ASSERT_EQ(batched->size(), texts.size());
    std::set<size_t> lengths;
    for (size_t i = 0; i < texts.size(); ++i) {
      auto single = engine_->Translate({texts[i]}, src, tgt, p, nullptr);
      ASSERT_TRUE(single.ok());
      EXPECT_EQ((*batched)[i].token_ids, (*single)[0].token_ids) << "beam " << beam << ": " << texts[i];
      EXPECT_EQ((*batched)[i].text, (*single)[0].text);
      lengths.insert((*single)[0].token_ids.size());
    }
    // Rows finish at different steps, so rows really leave the batch mid-decode.
    EXPECT_GT(lengths.size(), 2u) << "beam " << beam;
  }
}

TEST_F(NllbEngineTest, DifferentInputsGiveDifferentOutputs) {
  // The tiny model must not collapse to one output whatever the input (shared/MODELS.md).
  std::set<std::vector<int64_t>> outputs;
  std::set<int64_t> tokens;
  for (const auto& c : cases()) {
    TranslationParams p;
    p.max_length = 40;
    const auto ids = TranslateOne(c, p);
    outputs.insert(ids);
    tokens.insert(ids.begin(), ids.end());
  }
  EXPECT_GT(outputs.size(), cases().size() / 2);
  EXPECT_GT(tokens.size(), 20u);
}

TEST_F(NllbEngineTest, StopCheckCancelsMidDecode) {
  const auto& c = cases()[2];  // 40 steps without </s>
  int polls = 0;
  StopCheck stop = [&polls]() -> absl::Status {
    if (++polls > 5) return absl::CancelledError("client went away");
    return absl::OkStatus();
  };
  for (int beam : {1, 2}) {
    polls = 0;
    TranslationParams p;
    p.beam_size = beam;
    p.max_length = 40;
    auto out = engine_->Translate({c["text"].get<std::string>()}, c["source"], c["target"], p, stop);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kCancelled) << "beam " << beam;
    EXPECT_THAT(out.status().message(), HasSubstr("client went away"));
    EXPECT_EQ(polls, 6) << "the engine must stop at the first failing poll";
  }
  // A deadline status passes through unchanged.
  auto out = engine_->Translate({c["text"].get<std::string>()}, c["source"], c["target"], {},
                                [] { return absl::DeadlineExceededError("deadline"); });
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded);
  // The engine is usable afterwards.
  TranslationParams p;
  p.max_length = 40;
  EXPECT_EQ(TranslateOne(c, p), Ids(c["greedy"]["ids"]));
}

TEST_F(NllbEngineTest, StopCheckIsPolledEveryStep) {
  const auto& c = cases()[2];
  int polls = 0;
  TranslationParams p;
  p.max_length = 10;
  auto out = engine_->Translate({c["text"].get<std::string>()}, c["source"], c["target"], p,
                                [&polls] { ++polls; return absl::OkStatus(); });
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].token_ids.size(), 10u);
  // Translate steps its stepper: one poll before each of the 10 steps (the first runs the
  // prefix [2], [tgt] and chooses the first token).
  EXPECT_EQ(polls, 10);
}

TEST_F(NllbEngineTest, ValidateRejectsBadRequests) {
  const std::vector<std::string> ok_texts = {"Hello", "Bonjour"};
  TranslationParams p;
  EXPECT_TRUE(engine_->Validate(ok_texts, "eng_Latn", "fra_Latn", p).ok());

  auto s = engine_->Validate(ok_texts, "eng_latn", "fra_Latn", p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("source language"), HasSubstr("'eng_latn'"),
                                 HasSubstr("did you mean eng_Latn")));
  s = engine_->Validate(ok_texts, "eng_Latn", "klingon", p);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("target language"), HasSubstr("klingon"),
                                 HasSubstr("202 available")));

  s = engine_->Validate({"Hello", "   "}, "eng_Latn", "fra_Latn", p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("text 1 is empty"));
  EXPECT_EQ(engine_->Validate({}, "eng_Latn", "fra_Latn", p).code(),
            absl::StatusCode::kInvalidArgument);

  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "word ";
  s = engine_->Validate({"Hello", long_text}, "eng_Latn", "fra_Latn", p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("text 1 is too long"), HasSubstr("at most 128")));

  for (int beam : {0, -1, NllbEngine::kMaxBeamSize + 1}) {
    TranslationParams bad;
    bad.beam_size = beam;
    s = engine_->Validate(ok_texts, "eng_Latn", "fra_Latn", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << beam;
    EXPECT_THAT(s.message(), AllOf(HasSubstr("beam_size"), HasSubstr("1..16")));
  }
  for (int len : {-1, 127, 100000}) {  // tiny model: 128 positions -> at most 126 tokens
    TranslationParams bad;
    bad.max_length = len;
    s = engine_->Validate(ok_texts, "eng_Latn", "fra_Latn", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << len;
    EXPECT_THAT(s.message(), AllOf(HasSubstr("max_length"), HasSubstr("1..126")));
  }
  TranslationParams edge;
  edge.max_length = 126;
  EXPECT_TRUE(engine_->Validate(ok_texts, "eng_Latn", "fra_Latn", edge).ok());
  EXPECT_EQ(engine_->EffectiveMaxLength(0).value(), 126);  // manifest default_max_length, capped

  TranslationParams fixed_beam;
  fixed_beam.fixed_length = true;
  fixed_beam.beam_size = 2;
  EXPECT_THAT(engine_->Validate(ok_texts, "eng_Latn", "fra_Latn", fixed_beam).message(),
              HasSubstr("fixed_length"));
  TranslationParams nan_lp;
  nan_lp.beam_size = 2;
  nan_lp.length_penalty = std::nanf("");
  EXPECT_THAT(engine_->Validate(ok_texts, "eng_Latn", "fra_Latn", nan_lp).message(),
              HasSubstr("length_penalty"));
}

TEST_F(NllbEngineTest, TranslateRefusesWhatValidateRefuses) {
  TranslationParams p;
  auto out = engine_->Translate({"Hello", ""}, "eng_Latn", "fra_Latn", p, nullptr);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("text 1 is empty"));
  p.beam_size = 99;
  out = engine_->Translate({"Hello"}, "eng_Latn", "fra_Latn", p, nullptr);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(NllbEngineTest, DetokenizeDropsSpecialAndLanguageIds) {
  const auto& c = cases()[0];
  const auto ids = Ids(c["greedy"]["ids"]);
  ASSERT_FALSE(ids.empty());
  std::vector<int64_t> noisy = {0, 1, 2, 3, c["tgt_id"].get<int64_t>()};
  noisy.insert(noisy.end(), ids.begin(), ids.end());
  noisy.push_back(2);
  EXPECT_EQ(engine_->Detokenize(noisy).value(), c["greedy"]["text"].get<std::string>());
  EXPECT_EQ(engine_->Detokenize({}).value(), "");
}

// voxd's replicas: NewReplica shares the loaded model instead of loading it again, and the two
// engines translate at once on two threads exactly as one alone.
TEST(NllbEngineReplicaTest, ReplicasShareTheModelAndRunConcurrently) {
  EngineOptions options;
  options.device = TestDevice();
  auto engine = NllbEngine::Load("nllb-tiny", TinyModelDir(), options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const auto golden = ReadJson(GoldenPath());
  std::vector<std::string> texts;
  for (const auto& c : golden["cases"]) {
    if (c["source"] == "eng_Latn" && c["target"] == "fra_Latn") texts.push_back(c["text"]);
  }
  ASSERT_FALSE(texts.empty());
  TranslationParams p;
  p.beam_size = 2;
  auto alone = (*engine)->Translate(texts, "eng_Latn", "fra_Latn", p, nullptr);
  ASSERT_TRUE(alone.ok()) << alone.status();

  std::vector<std::unique_ptr<NllbEngine>> loaded;
  std::vector<std::unique_ptr<TranslationEngine>> replicas;
  const auto bytes = vox::testing::MeasureLoadAndReplica(
      [&] { loaded.push_back(*NllbEngine::Load("nllb-tiny", TinyModelDir(), options)); },
      [&] { replicas.push_back(*(*engine)->NewReplica()); });
  EXPECT_GT(bytes.load, 256 << 10);
  EXPECT_LT(bytes.replica * 10, bytes.load);

  auto ids = [](const absl::StatusOr<std::vector<TranslationOutput>>& out) {
    std::vector<std::vector<int64_t>> v;
    if (out.ok()) {
      for (const auto& o : *out) v.push_back(o.token_ids);
    }
    return v;
  };
  absl::StatusOr<std::vector<TranslationOutput>> a, b;
  std::thread t1([&] { a = (*engine)->Translate(texts, "eng_Latn", "fra_Latn", p, nullptr); });
  std::thread t2([&] { b = replicas[0]->Translate(texts, "eng_Latn", "fra_Latn", p, nullptr); });
  t1.join();
  t2.join();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(ids(a), ids(alone));
  EXPECT_EQ(ids(b), ids(alone));
}

// bfloat16 or int8 weights against float32 (docs/testing.md, "Tests that depend on the CPU's
// kernels"): logits within 16 bf16 units in the last place of the largest logit (observed: 4 for
// bfloat16), and the same argmax wherever float32's top-2 margin exceeds twice that. Returns how
// many texts had a margin wide enough for the argmax check.
int ExpectFirstStepsNearFloat32(NllbEngine& engine, const nlohmann::json& fp32_cases) {
  int confident = 0;
  for (const auto& c : fp32_cases) {
    SCOPED_TRACE(c["text"].get<std::string>());
    auto logits = engine.FirstStepLogits({c["text"].get<std::string>()}, c["source"], c["target"]);
    EXPECT_TRUE(logits.ok()) << logits.status();
    if (!logits.ok()) continue;
    const auto fp32 = c["greedy"]["first_logits"].get<std::vector<float>>();
    const std::vector<float>& bf16 = (*logits)[0];
    EXPECT_EQ(bf16.size(), fp32.size());
    if (bf16.size() != fp32.size()) continue;
    float scale = 1, worst = 0;
    for (float x : fp32) scale = std::max(scale, std::fabs(x));
    for (size_t v = 0; v < fp32.size(); ++v) worst = std::max(worst, std::fabs(bf16[v] - fp32[v]));
    const float tolerance = scale / 16;
    EXPECT_LE(worst, tolerance);
    std::vector<float> sorted = fp32;
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
    if (sorted[0] - sorted[1] > 2 * tolerance) {
      ++confident;
      EXPECT_EQ(std::max_element(bf16.begin(), bf16.end()) - bf16.begin(),
                std::max_element(fp32.begin(), fp32.end()) - fp32.begin());
    }
  }
  return confident;
}

// Greedy ids equal the bf16 goldens (the bf16 model.ts run from Python) for every case, and the
// first steps are near float32's.
void ExpectBf16GoldensAndNearFloat32(NllbEngine& engine) {
  const auto golden = ReadJson(GoldenBf16Path());
  for (const auto& c : golden["cases"]) {
    TranslationParams p;
    p.max_length = c["max_length"];
    auto out = engine.Translate({c["text"].get<std::string>()}, c["source"], c["target"], p, nullptr);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].token_ids, Ids(c["greedy"]["ids"])) << c["text"];
  }
  EXPECT_GT(ExpectFirstStepsNearFloat32(engine, ReadJson(GoldenPath())["cases"]), 0);
}

// The bfloat16 export loads and translates exactly as the same model.ts does from Python
// (tools/tiny_nllb.py writes both): one text, so the same ops on the same shapes in the same
// LibTorch, whatever the CPU's kernels.
TEST(NllbEngineBf16Test, LoadsAndTranslatesLikeThePythonRun) {
  EngineOptions options;
  options.device = TestDevice();
  auto engine = NllbEngine::Load("nllb-tiny-bf16", TinyBf16Dir(), options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->info().dtype, "bfloat16");
  ExpectBf16GoldensAndNearFloat32(**engine);
}

TEST(NllbEngineBf16Test, Float32ModelConvertsToBFloat16OnLoad) {
  EngineOptions options;
  options.device = TestDevice();
  options.dtype = "bfloat16";
  auto engine = NllbEngine::Load("converted", TinyModelDir(), options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->info().dtype, "bfloat16");
  // Converted weights equal the bf16 export's: the same ops on the same numbers.
  ExpectBf16GoldensAndNearFloat32(**engine);
}

// int8 weights (vox::linear): greedy ids equal the goldens of the same model.ts run from Python.
// Exact on any CPU: vox::linear's int8 products are exact integer sums, and the rest are the
// same LibTorch ops on the same shapes. The first steps are near float32's.
TEST(NllbEngineInt8Test, LoadsAndTranslatesLikeThePythonRun) {
  EngineOptions options;
  options.device = "cpu";
  auto engine = NllbEngine::Load("nllb-tiny-int8", TinyInt8Dir(), options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->info().dtype, "float32");
  EXPECT_EQ((*engine)->info().weights, "int8");
  const auto golden = ReadJson(GoldenInt8Path());
  ASSERT_GE(golden["cases"].size(), 5u);
  int differs_from_float32 = 0;
  for (const auto& c : golden["cases"]) {
    TranslationParams p;
    p.max_length = c["max_length"];
    auto out = (*engine)->Translate({c["text"].get<std::string>()}, c["source"], c["target"], p, nullptr);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].token_ids, Ids(c["greedy"]["ids"])) << c["text"];
    differs_from_float32 += Ids(c["greedy"]["ids"]) != Ids(c["fp32_greedy_ids"]);
  }
  std::printf("int8 goldens: %d of %zu greedy outputs differ from float32's\n", differs_from_float32,
              golden["cases"].size());
  EXPECT_GT(ExpectFirstStepsNearFloat32(**engine, ReadJson(GoldenPath())["cases"]), 0);
}

TEST(NllbEngineInt8Test, RefusesAConversionAtLoad) {
  EngineOptions options;
  options.device = "cpu";
  options.dtype = "bfloat16";
  auto engine = NllbEngine::Load("nllb-tiny-int8", TinyInt8Dir(), options);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(engine.status().message(), HasSubstr("'weights'"));
  EXPECT_THAT(engine.status().message(), HasSubstr("bfloat16"));
}

// A model.ts without the methods this version decodes with (here: another model's module, as a
// stale or foreign export would be) is refused at load, naming the method and the remedy.
TEST(NllbEngineLoadTest, ModuleWithoutTheDecodeMethodsIsRefusedClearly) {
  vox::testing::ScopedModelCopy copy("stale_module");
  const std::filesystem::path xtts =
      std::filesystem::path(TinyModelDir()).parent_path() / "xtts-tiny" / "model.ts";
  std::filesystem::copy_file(xtts, copy.path() + "/model.ts",
                             std::filesystem::copy_options::overwrite_existing);
  auto manifest = ReadJson(copy.path() + "/manifest.json");
  manifest["files"]["model.ts"]["size"] = std::filesystem::file_size(xtts);
  vox::testing::WriteJson(copy.path() + "/manifest.json", manifest);
  EngineOptions options;
  options.device = "cpu";
  options.verify_checksums = false;
  auto engine = NllbEngine::Load("stale", copy.path(), options);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(engine.status().message(),
              AllOf(HasSubstr("model.ts"), HasSubstr("method 'encode' missing"),
                    HasSubstr("export the checkpoint again")))
      << engine.status();
}

}  // namespace
}  // namespace vox
