// voxbench's command line and request building: defaults, every error names the flag and the
// allowed values, --data in the protobuf JSON mapping.
#include "bench/voxbench/options.h"

#include "gmock/gmock.h"
#include "nlohmann/json.hpp"
#include "gtest/gtest.h"

namespace vox::bench {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<BenchOptions> Parse(std::vector<std::string> args) { return ParseFlags(args); }

TEST(ParseFlagsTest, DefaultsAndBothFlagForms) {
  absl::StatusOr<BenchOptions> o =
      Parse({"--server", "127.0.0.1:5", "--call=speech-translate", "--concurrency", "8",
             "--rate=2.5", "--deadline", "1500ms", "--format", "json", "--priority=high"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->server, "127.0.0.1:5");
  EXPECT_EQ(o->call, CallKind::kSpeechTranslate);
  EXPECT_EQ(o->concurrency, 8);
  EXPECT_EQ(o->total, 200);  // ghz's default -n when neither --total nor --duration
  EXPECT_EQ(o->duration, absl::ZeroDuration());
  EXPECT_DOUBLE_EQ(o->rate, 2.5);
  EXPECT_EQ(o->deadline, absl::Milliseconds(1500));
  EXPECT_EQ(o->format, ReportFormat::kJson);
  EXPECT_EQ(o->priority, v1::PRIORITY_HIGH);
  EXPECT_TRUE(o->progress);
}

TEST(ParseFlagsTest, DurationAloneMeansNoCountLimit) {
  absl::StatusOr<BenchOptions> o =
      Parse({"--server", "h:1", "--call", "translate", "--duration", "30s"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->total, 0);
  EXPECT_EQ(o->duration, absl::Seconds(30));
  o = Parse({"--server", "h:1", "--call", "translate", "--duration", "30s", "--total", "7"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->total, 7);
}

TEST(ParseFlagsTest, ErrorsNameTheFlagValueAndAllowedValues) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> says;
  };
  const std::vector<Case> cases = {
      {{"--call", "translate"}, {"--server", "required"}},
      {{"--server", "h:1"}, {"--call", "translate, synthesize, speech-translate"}},
      {{"--server", "h:1", "--call", "tts"}, {"--call", "'tts'", "speech-translate"}},
      {{"--server", "nocolon", "--call", "translate"}, {"--server", "'nocolon'", "HOST:PORT"}},
      {{"--server", "h:1", "--call", "translate", "--concurrency", "0"}, {"--concurrency", "'0'", ">= 1"}},
      {{"--server", "h:1", "--call", "translate", "--total", "x"}, {"--total", "'x'"}},
      {{"--server", "h:1", "--call", "translate", "--duration", "30"}, {"--duration", "'30'", "2s"}},
      {{"--server", "h:1", "--call", "translate", "--rate", "-1"}, {"--rate", "'-1'", "positive"}},
      {{"--server", "h:1", "--call", "translate", "--format", "xml"}, {"--format", "'xml'", "text, json"}},
      {{"--server", "h:1", "--call", "synthesize", "--encoding", "mp3"}, {"--encoding", "'mp3'", "opus, ogg, pcm16"}},
      {{"--server", "h:1", "--call", "translate", "--priority", "urgent"}, {"--priority", "high, normal, low"}},
      {{"--server", "h:1", "--call", "translate", "--bogus", "1"}, {"unknown flag '--bogus'"}},
      {{"--server", "h:1", "--call", "translate", "--bogus"}, {"unknown flag '--bogus'"}},
      {{"--server", "h:1", "--call", "translate", "--total"}, {"--total needs a value"}},
      {{"--server", "h:1", "--call", "translate", "extra"}, {"unexpected argument 'extra'"}},
      {{"--server", "h:1", "--call", "translate", "--greedy=1"}, {"--greedy takes no value"}},
      {{"--server", "h:1", "--call", "translate", "--data", "{}", "--text", "a"}, {"--data", "--text"}},
      {{"--server", "h:1", "--call", "synthesize", "--to", "spa_Latn"}, {"--to", "synthesize"}},
      {{"--server", "h:1", "--call", "translate", "--voice", "x"}, {"--voice", "translate"}},
      {{"--server", "h:1", "--call", "translate", "--data-file", "/nonexistent/x.json"},
       {"--data-file", "/nonexistent/x.json"}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<BenchOptions> o = ParseFlags(c.args);
    ASSERT_FALSE(o.ok()) << ::testing::PrintToString(c.args);
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    for (const std::string& s : c.says) {
      EXPECT_THAT(std::string(o.status().message()), HasSubstr(s)) << ::testing::PrintToString(c.args);
    }
  }
}

TEST(ParseFlagsTest, HelpNeedsNothingElse) {
  absl::StatusOr<BenchOptions> o = Parse({"--help"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->help);
  EXPECT_THAT(UsageText(), HasSubstr("--concurrency"));
}

BenchOptions Options(std::vector<std::string> args) {
  args.insert(args.begin(), {"--server", "h:1"});
  absl::StatusOr<BenchOptions> o = ParseFlags(args);
  EXPECT_TRUE(o.ok()) << o.status();
  return o.ok() ? *o : BenchOptions();
}

TEST(BuildRequestsTest, TranslateTextsFormOneRequest) {
  absl::StatusOr<RequestPlan> plan = BuildRequests(Options(
      {"--call", "translate", "--text", "One.", "--text", "Two.", "--from", "fra_Latn", "--to",
       "deu_Latn", "--beam", "4", "--priority", "low"}));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->translate.size(), 1u);
  const v1::TranslateRequest& r = plan->translate[0];
  EXPECT_THAT(r.texts(), ::testing::ElementsAre("One.", "Two."));
  EXPECT_EQ(r.source_language(), "fra_Latn");
  EXPECT_EQ(r.target_language(), "deu_Latn");
  EXPECT_EQ(r.options().beam_size(), 4);
  EXPECT_EQ(r.priority(), v1::PRIORITY_LOW);
  EXPECT_THAT(plan->data_json, HasSubstr("\"One.\""));
}

TEST(BuildRequestsTest, SynthesizeOneRequestPerText) {
  absl::StatusOr<RequestPlan> plan = BuildRequests(Options(
      {"--call", "synthesize", "--text", "a", "--text", "b", "--voice", "V", "--encoding",
       "pcm16", "--sample-rate", "48000", "--greedy"}));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->synthesize.size(), 2u);
  EXPECT_EQ(plan->synthesize[1].text(), "b");
  EXPECT_EQ(plan->synthesize[1].language(), "eng_Latn");
  EXPECT_EQ(plan->synthesize[1].voice(), "V");
  EXPECT_EQ(plan->synthesize[1].audio().encoding(), v1::AUDIO_ENCODING_PCM16);
  EXPECT_EQ(plan->synthesize[1].audio().sample_rate_hz(), 48000);
  EXPECT_TRUE(plan->synthesize[1].options().greedy());
}

TEST(BuildRequestsTest, SpeechTranslateConfigThenNumberedSegments) {
  absl::StatusOr<RequestPlan> plan = BuildRequests(Options(
      {"--call", "speech-translate", "--text", "First.", "--text", "Second.", "--encoding",
       "opus", "--priority", "high"}));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->session.size(), 3u);
  ASSERT_TRUE(plan->session[0].has_config());
  EXPECT_EQ(plan->session[0].config().source_language(), "eng_Latn");
  EXPECT_EQ(plan->session[0].config().target_language(), "spa_Latn");
  EXPECT_EQ(plan->session[0].config().audio().encoding(), v1::AUDIO_ENCODING_OPUS);
  EXPECT_EQ(plan->session[0].config().priority(), v1::PRIORITY_HIGH);
  EXPECT_EQ(plan->session[1].segment().segment_id(), 1u);
  EXPECT_EQ(plan->session[1].segment().text(), "First.");
  EXPECT_EQ(plan->session[2].segment().segment_id(), 2u);
}

TEST(ParseFlagsTest, TranslateSynthesizeTakesTheSpeechTranslateFlags) {
  absl::StatusOr<BenchOptions> o =
      Parse({"--server", "h:1", "--call", "translate-synthesize", "--to", "fra_Latn", "--voice",
             "V", "--greedy", "--beam", "2", "--encoding", "opus"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->call, CallKind::kTranslateSynthesize);
  EXPECT_EQ(o->to, "fra_Latn");
  EXPECT_EQ(o->voice, "V");
  EXPECT_EQ(o->beam_size, 2);
  EXPECT_STREQ(CallKindName(CallKind::kTranslateSynthesize), "translate-synthesize");
  EXPECT_STREQ(CallMethodName(CallKind::kTranslateSynthesize),
               "vox.v1.TranslationService.Translate+vox.v1.SpeechService.Synthesize");
  EXPECT_TRUE(IsSegmentedCall(CallKind::kTranslateSynthesize));
  EXPECT_TRUE(IsSegmentedCall(CallKind::kSpeechTranslate));
  EXPECT_FALSE(IsSegmentedCall(CallKind::kSynthesize));
  EXPECT_FALSE(IsSegmentedCall(CallKind::kTranslate));
  o = Parse({"--server", "h:1", "--call", "tts"});
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("translate-synthesize"));
}

TEST(BuildRequestsTest, TranslateSynthesizeBuildsTheSameSessionAsSpeechTranslate) {
  const std::vector<std::string> rest = {"--text", "First.", "--text", "Second.", "--to",
                                         "fra_Latn", "--voice", "V", "--greedy", "--beam", "3",
                                         "--priority", "low"};
  std::vector<std::string> st = {"--call", "speech-translate"};
  std::vector<std::string> ts = {"--call", "translate-synthesize"};
  st.insert(st.end(), rest.begin(), rest.end());
  ts.insert(ts.end(), rest.begin(), rest.end());
  absl::StatusOr<RequestPlan> a = BuildRequests(Options(st));
  absl::StatusOr<RequestPlan> b = BuildRequests(Options(ts));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->session.size(), 3u);
  ASSERT_EQ(a->session.size(), b->session.size());
  for (size_t i = 0; i < a->session.size(); ++i) {
    EXPECT_EQ(a->session[i].SerializeAsString(), b->session[i].SerializeAsString()) << i;
  }
  const v1::SpeechTranslateConfig& c = b->session[0].config();
  EXPECT_EQ(c.target_language(), "fra_Latn");
  EXPECT_EQ(c.voice(), "V");
  EXPECT_TRUE(c.synthesis_options().greedy());
  EXPECT_EQ(c.translate_options().beam_size(), 3);
  EXPECT_EQ(c.priority(), v1::PRIORITY_LOW);
  EXPECT_EQ(b->session[2].segment().text(), "Second.");
  EXPECT_EQ(a->data_json, b->data_json);
  // --data needs the config first here too.
  absl::StatusOr<RequestPlan> bad = BuildRequests(Options(
      {"--call", "translate-synthesize", "--data",
       R"([{"segment": {"segment_id": 1, "text": "a"}}])"}));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("config"));
}

TEST(BuildRequestsTest, DataArrayIsRoundRobinAndPriorityOverrides) {
  absl::StatusOr<RequestPlan> plan = BuildRequests(Options(
      {"--call", "translate", "--priority", "high", "--data",
       R"([{"texts": ["a"], "source_language": "eng_Latn", "target_language": "fra_Latn"},
           {"texts": ["b"], "sourceLanguage": "eng_Latn", "targetLanguage": "spa_Latn",
            "priority": "PRIORITY_LOW", "options": {"beam_size": 2}}])"}));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->translate.size(), 2u);
  EXPECT_EQ(plan->translate[1].texts(0), "b");
  EXPECT_EQ(plan->translate[1].target_language(), "spa_Latn");
  EXPECT_EQ(plan->translate[1].options().beam_size(), 2);
  EXPECT_EQ(plan->translate[1].priority(), v1::PRIORITY_HIGH);
}

TEST(BuildRequestsTest, DataErrorsNameTheProblem) {
  absl::StatusOr<RequestPlan> plan =
      BuildRequests(Options({"--call", "translate", "--data", "{\"textz\": [\"a\"]}"}));
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("vox.v1.TranslateRequest"));
  plan = BuildRequests(Options({"--call", "translate", "--data", "{not json"}));
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("not valid JSON"));
  plan = BuildRequests(Options({"--call", "translate", "--data", "[1]"}));
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("--data[0]"));
  plan = BuildRequests(Options(
      {"--call", "speech-translate", "--data", R"([{"segment": {"segment_id": 1, "text": "a"}}])"}));
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("config"));
  plan = BuildRequests(Options({"--call", "speech-translate", "--data",
                                R"([{"config": {"source_language": "eng_Latn"}},
                                    {"config": {"source_language": "eng_Latn"}}])"}));
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(std::string(plan.status().message()), HasSubstr("--data[1]"));
}

TEST(ChannelServiceConfigTest, LoadBalancing) {
  absl::StatusOr<BenchOptions> o = Parse({"--server", "ipv4:127.0.0.1:5,127.0.0.1:6", "--call",
                                          "translate", "--lb", "round_robin"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->server, "ipv4:127.0.0.1:5,127.0.0.1:6");
  EXPECT_EQ(nlohmann::json::parse(ChannelServiceConfig(*o)),
            nlohmann::json::parse(R"({"loadBalancingConfig": [{"round_robin": {}}]})"));

  o = Parse({"--server", "h:1", "--call", "translate"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(nlohmann::json::parse(ChannelServiceConfig(*o)),
            nlohmann::json::parse(R"({"loadBalancingConfig": [{"pick_first": {}}]})"));

  o = Parse({"--server", "h:1", "--call", "translate", "--lb", "random"});
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("--lb"));
}

}  // namespace
}  // namespace vox::bench
