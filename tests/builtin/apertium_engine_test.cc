// The Apertium engine against Debian's own tools: every expected translation is what the
// `apertium` command prints for the same text (run here through popen), never a copied string.
#include "engines/builtin/apertium_engine.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engines/builtin/apertium_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Runs `command` with `input` on stdin (through a temporary file); returns its stdout.
std::string RunWithInput(const std::string& command, const std::string& input) {
  std::string path = ::testing::TempDir() + "vox_apertium_test_XXXXXX";
  const int fd = mkstemp(path.data());
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, input.data(), input.size()), static_cast<ssize_t>(input.size()));
  close(fd);
  FILE* pipe = popen(absl::StrCat(command, " < ", path).c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::string out;
  char buffer[4096];
  size_t n;
  while (pipe != nullptr && (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  if (pipe != nullptr) {
    EXPECT_EQ(pclose(pipe), 0) << command;
  }
  unlink(path.c_str());
  return out;
}

// What the `apertium` command prints for `text`, surrounding whitespace trimmed (the engine
// trims its translations).
std::string ApertiumCommand(const std::string& mode, const std::string& text, bool marks) {
  return std::string(absl::StripAsciiWhitespace(
      RunWithInput(absl::StrCat("apertium ", marks ? "" : "-u ", mode), text)));
}

const std::vector<std::string>& EnglishSentences() {
  static const auto* s = new std::vector<std::string>{
      "Hello, how are you?",
      "The weather is very nice today and we are going to the beach.",
      "I have two dogs and one cat",
      "Where is the train station? I need to buy a ticket.",
      "She said: \"the price is $5 <or> [maybe] {more} / less\" ~ ok @home",
  };
  return *s;
}

class ApertiumEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto engine = CreateApertiumEngine(ApertiumOptions{});
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = engine->release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }

  static std::string TranslateOne(ApertiumEngine& engine, const std::string& text,
                                  const std::string& source, const std::string& target) {
    auto out = engine.Translate({text}, source, target, {}, {});
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return "";
    EXPECT_EQ(out->size(), 1u);
    return (*out)[0].text;
  }

  static ApertiumEngine* engine_;
};
ApertiumEngine* ApertiumEngineTest::engine_ = nullptr;

TEST(ApertiumTextTest, EscapingMatchesDestxt) {
  for (const std::string text :
       {"Hello, how are you?", "a$b/c<d>e@f[g\\h]i^j{k}l~m#n*o", "two  spaces\tand\ttabs",
        "line\nbreak", "trailing space ", "trailing newline\n", "ünïcödé ¿qué?"}) {
    EXPECT_EQ(ToApertiumStream(text), RunWithInput("apertium-destxt", text)) << text;
  }
}

TEST(ApertiumTextTest, UnescapingMatchesRetxt) {
  for (const std::string stream :
       {"Hola, c\xc3\xb3mo eres?.[]", "a\\$b\\/c\\<d\\>e\\@f\\[g\\\\h\\]i\\^j\\{k\\}l[~]m.[]",
        "two[  ]spaces[\t]x.[]", "x.[][\n]", "a[]b"}) {
    EXPECT_EQ(FromApertiumStream(stream), RunWithInput("apertium-retxt", stream)) << stream;
  }
}

TEST(ApertiumModeTest, ParsesStagesAndSubstitutesArguments) {
  auto stages = ParseApertiumMode(
      "lt-proc -w '/d/x.automorf.bin' | apertium-tagger -g $2 '/d/x.prob' | "
      "lt-proc $1 \"/d/with space.autogen.bin\"\n",
      /*mark_unknown_words=*/false);
  ASSERT_TRUE(stages.ok()) << stages.status();
  ASSERT_EQ(stages->size(), 3u);
  EXPECT_THAT((*stages)[0], ElementsAre("lt-proc", "-z", "-w", "/d/x.automorf.bin"));
  EXPECT_THAT((*stages)[1], ElementsAre("apertium-tagger", "-z", "-g", "/d/x.prob"));
  EXPECT_THAT((*stages)[2], ElementsAre("lt-proc", "-z", "-n", "/d/with space.autogen.bin"));
  auto marked = ParseApertiumMode("lt-proc $1 g.bin", true);
  ASSERT_TRUE(marked.ok());
  EXPECT_THAT((*marked)[0], ElementsAre("lt-proc", "-z", "-g", "g.bin"));
  EXPECT_EQ(ParseApertiumMode("lt-proc $3 g.bin", true).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseApertiumMode("lt-proc 'g.bin", true).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ApertiumEngineTest, EngSpaEqualsApertiumCommand) {
  for (const std::string& text : EnglishSentences()) {
    EXPECT_EQ(TranslateOne(*engine_, text, "eng_Latn", "spa_Latn"),
              ApertiumCommand("eng-spa", text, /*marks=*/false))
        << text;
  }
}

TEST_F(ApertiumEngineTest, EngCatEqualsApertiumCommand) {
  for (const std::string& text : EnglishSentences()) {
    EXPECT_EQ(TranslateOne(*engine_, text, "eng_Latn", "cat_Latn"),
              ApertiumCommand("eng-cat", text, /*marks=*/false))
        << text;
  }
}

TEST_F(ApertiumEngineTest, SpaEngAndCatEngEqualApertiumCommand) {
  for (const std::string text : {"Hola, ¿cómo estás?", "Me gusta mucho el café con leche."}) {
    EXPECT_EQ(TranslateOne(*engine_, text, "spa_Latn", "eng_Latn"),
              ApertiumCommand("spa-eng", text, false))
        << text;
  }
  for (const std::string text : {"Bon dia, com estàs?", "El gat dorm al sofà."}) {
    EXPECT_EQ(TranslateOne(*engine_, text, "cat_Latn", "eng_Latn"),
              ApertiumCommand("cat-eng", text, false))
        << text;
  }
}

TEST_F(ApertiumEngineTest, SeveralTextsInOneCallComeBackInOrder) {
  const std::vector<std::string>& texts = EnglishSentences();
  auto out = engine_->Translate(texts, "eng_Latn", "spa_Latn", {}, {});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ((*out)[i].text, ApertiumCommand("eng-spa", texts[i], false)) << i;
  }
}

TEST_F(ApertiumEngineTest, ConcurrentCallsOnOneAndSeveralPairsStayCorrect) {
  const std::string english = "Where is the train station? I need to buy a ticket.";
  const std::string spanish = ApertiumCommand("eng-spa", english, false);
  const std::string catalan = ApertiumCommand("eng-cat", english, false);
  std::vector<std::vector<std::string>> got(6);
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      const std::string target = t % 2 == 0 ? "spa_Latn" : "cat_Latn";
      for (int i = 0; i < 5; ++i) {
        auto out = engine_->Translate({english, english}, "eng_Latn", target, {}, {});
        if (!out.ok()) {
          got[t].push_back(std::string(out.status().message()));
          continue;
        }
        for (const auto& o : *out) got[t].push_back(o.text);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 6; ++t) {
    ASSERT_EQ(got[t].size(), 10u) << t;
    for (const std::string& text : got[t]) EXPECT_EQ(text, t % 2 == 0 ? spanish : catalan) << t;
  }
  EXPECT_EQ(engine_->restarts(), 0);
}

TEST_F(ApertiumEngineTest, UnknownWordMarksAreStrippedByDefault) {
  const std::string text = "The xyzzyq sleeps.";
  const std::string plain = TranslateOne(*engine_, text, "eng_Latn", "spa_Latn");
  EXPECT_THAT(plain, HasSubstr("xyzzyq"));
  EXPECT_THAT(plain, Not(HasSubstr("*")));

  ApertiumOptions options;
  options.pairs = {"eng-spa"};
  options.mark_unknown_words = true;
  auto marked_engine = CreateApertiumEngine(options);
  ASSERT_TRUE(marked_engine.ok()) << marked_engine.status();
  const std::string marked = TranslateOne(**marked_engine, text, "eng_Latn", "spa_Latn");
  EXPECT_THAT(marked, HasSubstr("*xyzzyq"));
  EXPECT_EQ(marked, ApertiumCommand("eng-spa", text, /*marks=*/true));
}

TEST_F(ApertiumEngineTest, UnknownPairListsAvailablePairs) {
  EXPECT_TRUE(engine_->SupportsPair("eng_Latn", "spa_Latn"));
  EXPECT_FALSE(engine_->SupportsPair("eng_Latn", "fra_Latn"));
  const absl::Status status = engine_->Validate({"Hello"}, "eng_Latn", "fra_Latn", {});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("fra_Latn"));
  for (const char* pair : {"eng-spa", "spa-eng", "eng-cat", "cat-eng"}) {
    EXPECT_THAT(status.message(), HasSubstr(pair));
  }
  auto translated = engine_->Translate({"Hello"}, "spa_Latn", "cat_Latn", {}, {});
  EXPECT_EQ(translated.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ApertiumEngineTest, BadTextsAreInvalidArgumentNamingTheIndex) {
  struct Case {
    std::vector<std::string> texts;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{}, "no texts"},
      {{"fine", "  \n"}, "text 1 is empty"},
      {{std::string("a\0b", 3)}, "text 0 contains a NUL"},
      {{"ok", "ok", "\xff\xfe"}, "text 2 is not valid UTF-8"},
      {{std::string(10001, 'a')}, "at most 10000"},
  };
  for (const Case& c : cases) {
    auto out = engine_->Translate(c.texts, "eng_Latn", "spa_Latn", {}, {});
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << c.needle;
    EXPECT_THAT(out.status().message(), HasSubstr(c.needle));
  }
  TranslationParams fixed;
  fixed.fixed_length = true;
  EXPECT_EQ(engine_->Validate({"a"}, "eng_Latn", "spa_Latn", fixed).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->restarts(), 0);
}

TEST_F(ApertiumEngineTest, InfoDescribesTheEngine) {
  const ModelInfo& info = engine_->info();
  EXPECT_EQ(info.kind, "translation");
  EXPECT_EQ(info.architecture, "apertium");
  EXPECT_THAT(info.languages, ElementsAre("eng_Latn", "spa_Latn", "cat_Latn"));
  EXPECT_THAT(engine_->pairs(), ElementsAre("eng-spa", "spa-eng", "eng-cat", "cat-eng"));
}

TEST(ApertiumEngineConfigTest, BadPairsAreRejectedAtCreation) {
  ApertiumOptions options;
  options.pairs = {"eng-xyz"};
  auto engine = CreateApertiumEngine(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(engine.status().message(), HasSubstr("xyz"));

  options.pairs = {"fra-eng"};  // in the language table, but no Debian package installed here
  engine = CreateApertiumEngine(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(engine.status().message(), HasSubstr("fra-eng.mode"));

  // The factory's result converts to the interface type the server stores.
  options.pairs = {"eng-spa"};
  absl::StatusOr<std::unique_ptr<TranslationEngine>> as_interface = CreateApertiumEngine(options);
  ASSERT_TRUE(as_interface.ok()) << as_interface.status();
  EXPECT_TRUE((*as_interface)->SupportsPair("eng_Latn", "spa_Latn"));

  options.pairs = {"engspa"};
  EXPECT_EQ(CreateApertiumEngine(options).status().code(), absl::StatusCode::kInvalidArgument);

  options.pairs = {"eng-cat", "eng-cat_valencia"};
  engine = CreateApertiumEngine(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(engine.status().message(), HasSubstr("eng-cat_valencia"));
}

// True once `pid` has exited (a zombie waiting to be reaped by the engine, or gone).
bool HasExited(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  return paren == std::string::npos || line.substr(paren + 2, 1) == "Z";
}

TEST(ApertiumSupervisionTest, KilledStageIsRestartedAndNextRequestSucceeds) {
  ApertiumOptions options;
  options.pairs = {"eng-spa"};
  std::vector<std::string> reported;  // on_restart runs on this thread (inside Translate)
  options.on_restart = [&reported](const std::string& mode) { reported.push_back(mode); };
  auto engine = CreateApertiumEngine(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const std::string text = "The weather is very nice today.";
  const std::string expected = ApertiumCommand("eng-spa", text, false);
  const std::vector<pid_t> before = (*engine)->StagePidsForTest("eng-spa");
  ASSERT_GE(before.size(), 5u);
  ASSERT_EQ((*engine)->restarts(), 0);

  const pid_t victim = before[before.size() / 2];
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  for (int i = 0; i < 500 && !HasExited(victim); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(HasExited(victim));

  auto out = (*engine)->Translate({text}, "eng_Latn", "spa_Latn", {}, {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].text, expected);
  EXPECT_EQ((*engine)->restarts(), 1);
  EXPECT_EQ(reported, std::vector<std::string>{"eng-spa"});
  const std::vector<pid_t> after = (*engine)->StagePidsForTest("eng-spa");
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_NE(after[i], before[i]) << "stage " << i << " was not restarted";
    EXPECT_TRUE(HasExited(before[i])) << "old stage " << i << " still running";
  }
}

// The first stage killed just before a request, without waiting for it to be gone: the stages
// after it flush an empty record at end of input, which must never come back as the answer.
// Each call either answers correctly or fails UNAVAILABLE saying the pipeline was restarted, and
// the call after it is answered.
TEST(ApertiumSupervisionTest, FirstStageKilledRightBeforeARequestNeverGivesAWrongAnswer) {
  ApertiumOptions options;
  options.pairs = {"eng-spa"};
  auto engine = CreateApertiumEngine(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const std::string text = "The weather is very nice today.";
  const std::string expected = ApertiumCommand("eng-spa", text, false);
  for (int round = 0; round < 5; ++round) {
    const std::vector<pid_t> pids = (*engine)->StagePidsForTest("eng-spa");
    ASSERT_FALSE(pids.empty());
    ASSERT_EQ(kill(pids.front(), SIGKILL), 0);
    auto out = (*engine)->Translate({text}, "eng_Latn", "spa_Latn", {}, {});
    if (out.ok()) {
      EXPECT_EQ((*out)[0].text, expected) << "round " << round;
    } else {
      EXPECT_EQ(out.status().code(), absl::StatusCode::kUnavailable) << out.status();
      EXPECT_THAT(out.status().message(), HasSubstr("restarted")) << out.status();
      auto next = (*engine)->Translate({text}, "eng_Latn", "spa_Latn", {}, {});
      ASSERT_TRUE(next.ok()) << next.status();
      EXPECT_EQ((*next)[0].text, expected) << "round " << round;
    }
  }
  EXPECT_EQ((*engine)->restarts(), 5);
}

TEST(ApertiumSupervisionTest, StageDyingDuringRequestFailsThatRequestOnly) {
  ApertiumOptions options;
  options.pairs = {"eng-spa"};
  auto engine = CreateApertiumEngine(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const std::vector<pid_t> pids = (*engine)->StagePidsForTest("eng-spa");
  ASSERT_FALSE(pids.empty());
  // The stop check runs while the request is in flight: the kill lands mid-request.
  bool killed = false;
  StopCheck kill_a_stage = [&]() {
    if (!killed) {
      killed = true;
      kill(pids[2], SIGKILL);
    }
    return absl::OkStatus();
  };
  std::vector<std::string> texts(50, "The weather is very nice today and we are going to the beach.");
  auto failed = (*engine)->Translate(texts, "eng_Latn", "spa_Latn", {}, kill_a_stage);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  EXPECT_THAT(failed.status().message(), HasSubstr("restarted"));
  EXPECT_EQ((*engine)->restarts(), 1);

  auto next = (*engine)->Translate({"Hello, how are you?"}, "eng_Latn", "spa_Latn", {}, {});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ((*next)[0].text, ApertiumCommand("eng-spa", "Hello, how are you?", false));
  EXPECT_EQ((*engine)->restarts(), 1);
}

TEST(ApertiumSupervisionTest, HungStageTimesOutAndIsRestarted) {
  ApertiumOptions options;
  options.pairs = {"eng-spa"};
  options.request_timeout = absl::Seconds(2);
  auto engine = CreateApertiumEngine(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const std::vector<pid_t> pids = (*engine)->StagePidsForTest("eng-spa");
  ASSERT_FALSE(pids.empty());
  ASSERT_EQ(kill(pids[1], SIGSTOP), 0);  // alive but silent

  auto hung = (*engine)->Translate({"Hello"}, "eng_Latn", "spa_Latn", {}, {});
  EXPECT_EQ(hung.status().code(), absl::StatusCode::kUnavailable) << hung.status();
  EXPECT_THAT(hung.status().message(), HasSubstr("no answer"));
  EXPECT_EQ((*engine)->restarts(), 1);
  EXPECT_TRUE(HasExited(pids[1]));

  auto next = (*engine)->Translate({"Hello"}, "eng_Latn", "spa_Latn", {}, {});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ((*next)[0].text, ApertiumCommand("eng-spa", "Hello", false));
}

TEST(ApertiumSupervisionTest, StopCheckEndsTheCallAndKeepsThePipelineInStep) {
  ApertiumOptions options;
  options.pairs = {"eng-spa"};
  auto engine = CreateApertiumEngine(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  int calls = 0;
  StopCheck stop_at_once = [&]() {
    ++calls;
    return absl::CancelledError("client went away");
  };
  auto stopped = (*engine)->Translate({"One.", "Two.", "Three."}, "eng_Latn", "spa_Latn", {},
                                      stop_at_once);
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kCancelled);
  EXPECT_GE(calls, 1);

  // Stop after the first answer is possible: later records must not leak into the next call.
  std::vector<std::string> many(200, "The cat sleeps on the sofa.");
  int polls = 0;
  StopCheck stop_later = [&]() {
    return ++polls > 2 ? absl::CancelledError("deadline") : absl::OkStatus();
  };
  auto partial = (*engine)->Translate(many, "eng_Latn", "spa_Latn", {}, stop_later);
  EXPECT_EQ(partial.status().code(), absl::StatusCode::kCancelled);

  auto next = (*engine)->Translate({"Hello, how are you?", "Good night."}, "eng_Latn", "spa_Latn",
                                   {}, {});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ((*next)[0].text, ApertiumCommand("eng-spa", "Hello, how are you?", false));
  EXPECT_EQ((*next)[1].text, ApertiumCommand("eng-spa", "Good night.", false));
  EXPECT_EQ((*engine)->restarts(), 0);
}

}  // namespace
}  // namespace vox
