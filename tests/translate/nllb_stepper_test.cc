// NllbEngine::NewStepper (continuous batching) against Translate() of each text alone, on the
// tiny model's golden texts: sequences join at different steps, pause and resume, leave
// mid-decode; greedy and beam search; max_length and fixed_length. Token ids must be identical.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engines/core/engine_options.h"
#include "engines/core/translation_engine.h"
#include "engines/translate/nllb_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/translate/test_util.h"

namespace vox {
namespace {

// Every test here runs with the stepper's uninitialised cache memory filled with NaN (read once
// per process; ctest runs each case in its own), so a masked read of a column nobody made finite
// poisons the logits and fails the comparisons.
const bool kPoisonCaches = [] { return ::setenv("VOX_TEST_POISON_CACHES", "1", 1) == 0; }();


using ::testing::HasSubstr;
using vox::testing::GoldenPath;
using vox::testing::ReadJson;
using vox::testing::TestDevice;
using vox::testing::TinyModelDir;

std::vector<int64_t> Ids(const nlohmann::json& j) { return j.get<std::vector<int64_t>>(); }

// One sequence of a schedule: joins before step `join`, is left out of the steps in
// [pause_from, pause_to), and is Leave()d before step `leave` (-1: runs to the end).
struct Job {
  uint64_t id = 0;
  std::string text, source, target;
  TranslationParams params;
  int join = 0;
  int pause_from = -1, pause_to = -1;
  int leave = -1;
  // Filled by Run().
  bool finished = false;
  TranslationOutput output;
  int active_steps = 0;  // Step() calls that listed it, up to and including the finishing one
};

class NllbStepperTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineOptions options;
    options.device = TestDevice();
    auto engine = NllbEngine::Load("nllb-tiny", TinyModelDir(), options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = engine->release();
    golden_ = new nlohmann::json(ReadJson(GoldenPath()));
    ASSERT_GE((*golden_)["cases"].size(), 8u);
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete golden_;
  }
  static const nlohmann::json& cases() { return (*golden_)["cases"]; }

  static Job FromCase(uint64_t id, const nlohmann::json& c, TranslationParams p) {
    Job j;
    j.id = id;
    j.text = c["text"];
    j.source = c["source"];
    j.target = c["target"];
    j.params = p;
    return j;
  }

  static TranslationOutput Alone(const Job& j) {
    auto out = engine_->Translate({j.text}, j.source, j.target, j.params, nullptr);
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok() || out->size() != 1) return {};
    return (*out)[0];
  }

  // Runs the schedule on one stepper until every job finished or left. Checks the stepper's
  // bookkeeping on the way: one OK result per listed id, size() == joined - left.
  static void Run(std::vector<Job>& jobs, int* max_concurrent = nullptr,
                  NllbEngine::HeldRows held = NllbEngine::HeldRows::kAuto) {
    auto stepper = engine_->NewStepper(held);
    ASSERT_NE(stepper, nullptr);
    std::set<uint64_t> joined;
    int concurrent = 0;
    for (int step = 0; step < 1000; ++step) {
      for (Job& j : jobs) {
        if (j.join == step) {
          ASSERT_TRUE(stepper->Join(j.id, j.text, j.source, j.target, j.params).ok()) << j.id;
          joined.insert(j.id);
        }
        if (j.leave == step && joined.count(j.id) > 0) {
          stepper->Leave(j.id);
          joined.erase(j.id);
        }
      }
      ASSERT_EQ(stepper->size(), static_cast<int>(joined.size()));
      std::vector<uint64_t> active;
      std::vector<Job*> listed;
      bool waiting = false;
      for (Job& j : jobs) {
        if (joined.count(j.id) == 0) {
          waiting = waiting || j.join > step;
          continue;
        }
        waiting = true;
        if (step >= j.pause_from && step < j.pause_to) continue;
        active.push_back(j.id);
        listed.push_back(&j);
      }
      if (!waiting) return;
      concurrent = std::max(concurrent, static_cast<int>(joined.size()));
      if (max_concurrent != nullptr) *max_concurrent = concurrent;
      if (active.empty()) continue;
      const auto results = stepper->Step(active);
      ASSERT_EQ(results.size(), active.size());
      for (size_t i = 0; i < active.size(); ++i) {
        Job& j = *listed[i];
        ASSERT_TRUE(results[i].status.ok()) << j.id << ": " << results[i].status;
        ++j.active_steps;
        if (results[i].finished) {
          j.finished = true;
          j.output = results[i].output;
          stepper->Leave(j.id);
          joined.erase(j.id);
        }
      }
    }
    FAIL() << "the schedule did not end in 1000 steps";
  }

  static void Reset(std::vector<Job>& jobs) {
    for (Job& j : jobs) {
      j.finished = false;
      j.output = {};
      j.active_steps = 0;
    }
  }

  static constexpr NllbEngine::HeldRows kPolicies[] = {
      NllbEngine::HeldRows::kMask, NllbEngine::HeldRows::kSelect, NllbEngine::HeldRows::kAuto};
  static const char* Name(NllbEngine::HeldRows h) {
    return h == NllbEngine::HeldRows::kMask     ? "mask"
           : h == NllbEngine::HeldRows::kSelect ? "select"
                                                : "auto";
  }

  static NllbEngine* engine_;
  static nlohmann::json* golden_;
};
NllbEngine* NllbStepperTest::engine_ = nullptr;
nlohmann::json* NllbStepperTest::golden_ = nullptr;

TEST_F(NllbStepperTest, EngineOffersAStepper) {
  auto stepper = engine_->NewStepper();
  ASSERT_NE(stepper, nullptr);
  EXPECT_EQ(stepper->size(), 0);
  EXPECT_TRUE(stepper->Step({}).empty());
}

// Every golden text (five language pairs, 0 to 40 tokens, some ending with </s>, some at the
// limit), joining two by two at staggered steps, three of them paused for a while and resumed.
TEST_F(NllbStepperTest, GreedyStaggeredAndPausedEqualsTranslateAlone) {
  std::vector<Job> jobs;
  for (size_t i = 0; i < cases().size(); ++i) {
    TranslationParams p;
    p.max_length = cases()[i]["max_length"];
    Job j = FromCase(100 + i, cases()[i], p);
    j.join = static_cast<int>(i / 2) * 3;
    if (i % 4 == 1) {
      j.pause_from = j.join + 2 + static_cast<int>(i);
      j.pause_to = j.pause_from + 5;
    }
    jobs.push_back(std::move(j));
  }
  for (NllbEngine::HeldRows held : kPolicies) {
    SCOPED_TRACE(Name(held));
    Reset(jobs);
    int concurrent = 0;
    Run(jobs, &concurrent, held);
    EXPECT_GT(concurrent, 5) << "the schedule must really overlap sequences";
    int ended = 0, paused_checked = 0;
    for (size_t i = 0; i < jobs.size(); ++i) {
      const Job& j = jobs[i];
      ASSERT_TRUE(j.finished) << j.text;
      const TranslationOutput alone = Alone(j);
      EXPECT_EQ(j.output.token_ids, alone.token_ids) << j.text;
      EXPECT_EQ(j.output.text, alone.text) << j.text;
      EXPECT_EQ(j.output.token_ids, Ids(cases()[i]["greedy"]["ids"])) << j.text;
      // One generated token per Step that listed it; an ending </s> takes a step of its own.
      const bool eos = cases()[i]["greedy"]["ended_with_eos"].get<bool>();
      EXPECT_EQ(j.active_steps, static_cast<int>(alone.token_ids.size()) + (eos ? 1 : 0)) << j.text;
      ended += eos;
      // A pause that fell inside the decode held the sequence without changing its result.
      if (j.pause_from >= 0 && j.pause_from < j.join + j.active_steps) ++paused_checked;
    }
    EXPECT_GT(ended, 0);
    EXPECT_LT(ended, static_cast<int>(jobs.size()));
    EXPECT_GE(paused_checked, 2);
  }
}

// All texts joining at one step (one encoder batch of different lengths and language pairs).
TEST_F(NllbStepperTest, GreedyAllJoiningTogetherEqualsTranslateAlone) {
  std::vector<Job> jobs;
  for (size_t i = 0; i < cases().size(); ++i) {
    TranslationParams p;
    p.max_length = 30;
    jobs.push_back(FromCase(i, cases()[i], p));
  }
  Run(jobs);
  std::set<size_t> lengths;
  for (const Job& j : jobs) {
    ASSERT_TRUE(j.finished);
    EXPECT_EQ(j.output.token_ids, Alone(j).token_ids) << j.text;
    lengths.insert(j.output.token_ids.size());
  }
  EXPECT_GT(lengths.size(), 2u) << "sequences must leave the batch at different steps";
}

// Beam search keeps k rows per sequence; mixed with greedy sequences, staggered and paused.
TEST_F(NllbStepperTest, BeamMixedWithGreedyEqualsTranslateAlone) {
  std::vector<Job> jobs;
  uint64_t id = 0;
  int differ = 0;
  for (size_t i = 0; i < cases().size(); ++i) {
    const auto& c = cases()[i];
    for (size_t b = 0; b < c["beams"].size(); b += 1 + (i % 2)) {
      const auto& beam = c["beams"][b];
      TranslationParams p;
      p.max_length = c["max_length"];
      p.beam_size = beam["beam_size"];
      p.length_penalty = beam["length_penalty"].get<float>();
      Job j = FromCase(id, c, p);
      j.join = static_cast<int>(id % 7) * 2;
      if (id % 5 == 2) {
        j.pause_from = j.join + 3;
        j.pause_to = j.pause_from + 4;
      }
      differ += Ids(beam["ids"]) != Ids(c["greedy"]["ids"]);
      jobs.push_back(std::move(j));
      ++id;
    }
    TranslationParams g;
    g.max_length = c["max_length"];
    Job j = FromCase(id, c, g);
    j.join = static_cast<int>(id % 7) * 2 + 1;
    jobs.push_back(std::move(j));
    ++id;
  }
  ASSERT_GT(differ, 0) << "beam goldens must differ from greedy somewhere";
  for (NllbEngine::HeldRows held : {NllbEngine::HeldRows::kMask, NllbEngine::HeldRows::kSelect}) {
    SCOPED_TRACE(Name(held));
    Reset(jobs);
    Run(jobs, nullptr, held);
    int beams = 0;
    for (const Job& j : jobs) {
      ASSERT_TRUE(j.finished) << j.text;
      const TranslationOutput alone = Alone(j);
      EXPECT_EQ(j.output.token_ids, alone.token_ids)
          << j.text << " beam " << j.params.beam_size << " lp " << j.params.length_penalty;
      EXPECT_EQ(j.output.text, alone.text);
      beams += j.params.beam_size > 1;
    }
    EXPECT_GT(beams, 15);
  }
}

TEST_F(NllbStepperTest, LeavingMidDecodeLeavesTheOthersUnchanged) {
  std::vector<Job> jobs;
  for (size_t i : {2, 4, 6, 7, 9}) {  // all run to max_length 40 in the goldens
    TranslationParams p;
    p.max_length = 40;
    p.beam_size = i == 7 ? 2 : 1;
    jobs.push_back(FromCase(i, cases()[i], p));
  }
  jobs[1].leave = 10;  // greedy, mid-decode
  jobs[3].leave = 6;   // beam, mid-decode
  jobs[4].join = 8;    // joins after the beam sequence left, before the greedy one leaves
  Run(jobs);
  for (const Job& j : jobs) {
    if (j.leave >= 0) {
      EXPECT_FALSE(j.finished) << j.text;
      EXPECT_EQ(j.active_steps, j.leave) << j.text;
      continue;
    }
    ASSERT_TRUE(j.finished) << j.text;
    EXPECT_EQ(j.output.token_ids, Alone(j).token_ids) << j.text;
  }
}

TEST_F(NllbStepperTest, SizeCountsJoinedNotLeftAndUnknownIdsAreRefused) {
  auto stepper = engine_->NewStepper();
  TranslationParams p;
  p.max_length = 40;
  const auto& c = cases()[2];
  ASSERT_TRUE(stepper->Join(1, c["text"], c["source"], c["target"], p).ok());
  ASSERT_TRUE(stepper->Join(2, c["text"], c["source"], c["target"], p).ok());
  EXPECT_EQ(stepper->size(), 2);
  auto r = stepper->Step({1, 2});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].status.ok());
  EXPECT_FALSE(r[0].finished);
  stepper->Leave(1);
  EXPECT_EQ(stepper->size(), 1);
  stepper->Leave(1);   // already left: ignored
  stepper->Leave(77);  // never joined: ignored
  EXPECT_EQ(stepper->size(), 1);
  r = stepper->Step({2, 1});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[0].status.ok());
  EXPECT_EQ(r[1].status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r[1].status.message(), HasSubstr("1"));
  // An id may join again once it left.
  EXPECT_TRUE(stepper->Join(1, "Bonjour", "fra_Latn", "deu_Latn", p).ok());
  EXPECT_EQ(stepper->size(), 2);
  stepper->Leave(1);
  stepper->Leave(2);
  EXPECT_EQ(stepper->size(), 0);
}

TEST_F(NllbStepperTest, JoinRefusesWhatValidateRefuses) {
  auto stepper = engine_->NewStepper();
  TranslationParams p;
  ASSERT_TRUE(stepper->Join(5, "Hello", "eng_Latn", "fra_Latn", p).ok());
  EXPECT_EQ(stepper->Join(5, "Hello", "eng_Latn", "fra_Latn", p).code(),
            absl::StatusCode::kAlreadyExists);
  auto s = stepper->Join(6, "Hello", "eng_latn", "fra_Latn", p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("eng_Latn"));
  EXPECT_EQ(stepper->Join(6, "Hello", "eng_Latn", "xx", p).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stepper->Join(6, "   ", "eng_Latn", "fra_Latn", p).code(),
            absl::StatusCode::kInvalidArgument);
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "word ";
  EXPECT_EQ(stepper->Join(6, long_text, "eng_Latn", "fra_Latn", p).code(),
            absl::StatusCode::kInvalidArgument);
  TranslationParams bad;
  bad.beam_size = 99;
  EXPECT_EQ(stepper->Join(6, "Hello", "eng_Latn", "fra_Latn", bad).code(),
            absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.max_length = 100000;
  EXPECT_EQ(stepper->Join(6, "Hello", "eng_Latn", "fra_Latn", bad).code(),
            absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.fixed_length = true;
  bad.beam_size = 2;
  EXPECT_EQ(stepper->Join(6, "Hello", "eng_Latn", "fra_Latn", bad).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stepper->size(), 1);
}

TEST_F(NllbStepperTest, MaxLengthAndFixedLengthAreHonoured) {
  std::vector<Job> jobs;
  uint64_t id = 0;
  for (size_t i = 0; i < cases().size(); ++i) {
    const auto& c = cases()[i];
    TranslationParams fixed;
    fixed.fixed_length = true;
    fixed.max_length = c["fixed_length"]["max_length"];
    Job f = FromCase(id++, c, fixed);
    f.join = static_cast<int>(i);
    jobs.push_back(std::move(f));
    TranslationParams shortp;
    shortp.max_length = 1 + static_cast<int>(i % 7);
    Job s = FromCase(id++, c, shortp);
    s.join = static_cast<int>(i % 3);
    jobs.push_back(std::move(s));
  }
  Run(jobs);
  for (size_t k = 0; k < jobs.size(); ++k) {
    const Job& j = jobs[k];
    const auto& c = cases()[k / 2];
    ASSERT_TRUE(j.finished) << j.text;
    EXPECT_EQ(j.output.token_ids, Alone(j).token_ids) << j.text << " max " << j.params.max_length;
    if (j.params.fixed_length) {
      EXPECT_EQ(j.output.token_ids, Ids(c["fixed_length"]["ids"])) << j.text;
      EXPECT_EQ(static_cast<int>(j.output.token_ids.size()), j.params.max_length);
      EXPECT_EQ(j.active_steps, j.params.max_length);
    } else {
      const auto golden = Ids(c["greedy"]["ids"]);
      const size_t n = std::min<size_t>(golden.size(), j.params.max_length);
      EXPECT_EQ(j.output.token_ids, std::vector<int64_t>(golden.begin(), golden.begin() + n));
      EXPECT_LE(j.active_steps, j.params.max_length);
    }
  }
}

// A sequence paused before its first step stays pending (not encoded) and, once listed, runs
// exactly like one that joined at that step.
TEST_F(NllbStepperTest, PendingSequencePausedUntilLaterJoinsLater) {
  std::vector<Job> jobs;
  for (size_t i : {0, 5, 8}) {
    TranslationParams p;
    p.max_length = 40;
    jobs.push_back(FromCase(i, cases()[i], p));
  }
  jobs[1].pause_from = 0;
  jobs[1].pause_to = 9;
  Run(jobs);
  for (const Job& j : jobs) {
    ASSERT_TRUE(j.finished);
    EXPECT_EQ(j.output.token_ids, Alone(j).token_ids) << j.text;
  }
  const bool eos = cases()[5]["greedy"]["ended_with_eos"].get<bool>();
  EXPECT_EQ(jobs[1].active_steps, static_cast<int>(jobs[1].output.token_ids.size()) + eos);
}

TEST_F(NllbStepperTest, FinishedSequenceListedAgainGetsItsResultAgain) {
  auto stepper = engine_->NewStepper();
  const auto& c = cases()[3];  // "Thank you!": </s> first
  ASSERT_TRUE(c["greedy"]["ids"].empty());
  ASSERT_TRUE(stepper->Join(9, c["text"], c["source"], c["target"], {}).ok());
  auto r = stepper->Step({9});
  ASSERT_EQ(r.size(), 1u);
  ASSERT_TRUE(r[0].status.ok());
  EXPECT_TRUE(r[0].finished);
  EXPECT_TRUE(r[0].output.token_ids.empty());
  r = stepper->Step({9});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].finished);
  EXPECT_EQ(stepper->size(), 1);
  stepper->Leave(9);
  EXPECT_EQ(stepper->size(), 0);
}

// A torch error inside a step (here: a manifest claiming 1 decoder layer for a 2-layer model, so
// decode_step indexes past the cache list) fails the listed sequences with INTERNAL, never
// throws, and leaves a pending sequence that was not listed untouched.
TEST(NllbStepperErrorTest, TorchErrorsFailTheStepsSequences) {
  vox::testing::ScopedModelCopy copy("stepper_error");
  auto manifest = ReadJson(copy.path() + "/manifest.json");
  ASSERT_EQ(manifest["config"]["decoder_layers"], 2);
  manifest["config"]["decoder_layers"] = 1;
  vox::testing::WriteJson(copy.path() + "/manifest.json", manifest);
  EngineOptions options;
  options.device = TestDevice();
  options.verify_checksums = false;
  auto engine = NllbEngine::Load("broken", copy.path(), options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  auto stepper = (*engine)->NewStepper();
  ASSERT_TRUE(stepper->Join(1, "Hello", "eng_Latn", "fra_Latn", {}).ok());
  ASSERT_TRUE(stepper->Join(2, "Bonjour", "fra_Latn", "eng_Latn", {}).ok());
  auto r = stepper->Step({1});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status.code(), absl::StatusCode::kInternal) << r[0].status;
  EXPECT_THAT(r[0].status.message(), HasSubstr("broken"));
  EXPECT_FALSE(r[0].finished);
  EXPECT_EQ(stepper->size(), 2);
  // Listed again: the same failure, without running anything.
  r = stepper->Step({1});
  EXPECT_EQ(r[0].status.code(), absl::StatusCode::kInternal);
  // The other sequence was still pending; it fails only when it runs.
  r = stepper->Step({2});
  EXPECT_EQ(r[0].status.code(), absl::StatusCode::kInternal);
  stepper->Leave(1);
  stepper->Leave(2);
  EXPECT_EQ(stepper->size(), 0);
}

// A failure mid-decode: the manifest claims 1000 positions while model.ts holds a table of 130,
// so a sequence allowed 200 tokens fails inside decode_step once its position passes the table.
// The sequence held (not listed) in that step keeps its state and later finishes exactly as
// Translate() does; the failed one is INTERNAL.
TEST(NllbStepperErrorTest, FailureMidDecodeLeavesHeldSequencesIntact) {
  vox::testing::ScopedModelCopy copy("stepper_positions");
  auto manifest = ReadJson(copy.path() + "/manifest.json");
  ASSERT_EQ(manifest["config"]["max_position_embeddings"], 128);
  manifest["config"]["max_position_embeddings"] = 1000;
  vox::testing::WriteJson(copy.path() + "/manifest.json", manifest);
  EngineOptions options;
  options.device = TestDevice();
  options.verify_checksums = false;
  auto engine = NllbEngine::Load("short-table", copy.path(), options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const std::string text = "Where is the nearest train station?";
  TranslationParams ok_params;
  ok_params.max_length = 40;
  ok_params.fixed_length = true;
  auto alone = (*engine)->Translate({text}, "eng_Latn", "spa_Latn", ok_params, nullptr);
  ASSERT_TRUE(alone.ok()) << alone.status();
  TranslationParams long_params;
  long_params.max_length = 200;
  long_params.fixed_length = true;
  for (auto held : {NllbEngine::HeldRows::kMask, NllbEngine::HeldRows::kSelect}) {
    auto stepper = (*engine)->NewStepper(held);
    ASSERT_TRUE(stepper->Join(1, "Bonjour", "fra_Latn", "deu_Latn", long_params).ok());
    ASSERT_TRUE(stepper->Join(2, text, "eng_Latn", "spa_Latn", ok_params).ok());
    for (int step = 0; step < 10; ++step) {
      auto r = stepper->Step({1, 2});
      ASSERT_TRUE(r[0].status.ok() && r[1].status.ok());
    }
    int failed_at = -1;
    for (int step = 10; step < 200 && failed_at < 0; ++step) {
      auto r = stepper->Step({1});
      ASSERT_FALSE(r[0].finished);
      if (!r[0].status.ok()) {
        EXPECT_EQ(r[0].status.code(), absl::StatusCode::kInternal) << r[0].status;
        failed_at = step;
      }
    }
    // Positions 2 and 3 hold the prefix; generated token k is fed at position 3 + k.
    EXPECT_GT(failed_at, 100);
    EXPECT_EQ(stepper->size(), 2);
    stepper->Leave(1);
    TranslationStepResult last;
    for (int step = 0; step < 40 && !last.finished; ++step) {
      auto r = stepper->Step({2});
      ASSERT_TRUE(r[0].status.ok()) << r[0].status;
      last = r[0];
    }
    ASSERT_TRUE(last.finished);
    EXPECT_EQ(last.output.token_ids, (*alone)[0].token_ids);
  }
}

}  // namespace
}  // namespace vox
