#include "server/config.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

using ::testing::HasSubstr;

std::string WriteTemp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigTest, DefaultsMatchTheDocumentedOnes) {
  ServerConfig c;
  EXPECT_EQ(c.max_texts_per_call, 64);
  EXPECT_EQ(c.max_text_chars, 100000);
  EXPECT_EQ(c.glossary_dir, "");
  EXPECT_EQ(c.translation.max_queue_size, 256);
  EXPECT_TRUE(c.verify_checksums);
  EXPECT_EQ(c.translation.options.device, "auto");
  EXPECT_EQ(c.max_segments_per_session, 0);
  EXPECT_EQ(c.idle_stream_timeout, absl::Seconds(300));
}

TEST(ConfigTest, EveryKeyOfTheExampleLayoutIsApplied) {
  ServerConfig c;
  const absl::Status s = ApplyConfigToml(R"(
[server]
listen = "0.0.0.0:6000"
max_texts_per_call = 8
max_text_chars = 5000
glossary_dir = "/srv/glossaries"
shutdown_grace_seconds = 2.5
access_log = false
max_segments_per_session = 500
idle_stream_timeout_seconds = 45

[metrics]
listen = "127.0.0.1:9999"

[models]
dir = "/srv/models"
verify_checksums = false

[builtin]
translation = "fallback"
speech = "off"
apertium_pairs = ["eng-spa"]
espeak_languages = ["spa_Latn", "eng_Latn"]

[translation]
device = "cpu"
dtype = "bfloat16"
threads = 3
blas_threads = 2
queue_size = 5

[speech]
device = "cuda:1"
queue_size = 7
vocoder_dtype = "bfloat16"
)", "test.toml", &c);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.listen, "0.0.0.0:6000");
  EXPECT_EQ(c.max_texts_per_call, 8);
  EXPECT_EQ(c.max_text_chars, 5000);
  EXPECT_EQ(c.glossary_dir, "/srv/glossaries");
  EXPECT_EQ(c.shutdown_grace, absl::Milliseconds(2500));
  EXPECT_FALSE(c.access_log);
  EXPECT_EQ(c.max_segments_per_session, 500);
  EXPECT_EQ(c.idle_stream_timeout, absl::Seconds(45));
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:9999");
  EXPECT_EQ(c.models_dir, "/srv/models");
  EXPECT_FALSE(c.verify_checksums);
  EXPECT_EQ(c.translation.options.device, "cpu");
  EXPECT_EQ(c.translation.options.dtype, "bfloat16");
  EXPECT_EQ(c.speech.options.vocoder_dtype, "bfloat16");
  EXPECT_EQ(c.translation.options.vocoder_dtype, "float32");
  EXPECT_EQ(c.translation.options.intra_op_threads, 3);
  EXPECT_EQ(c.translation.options.blas_threads, 2);
  EXPECT_EQ(c.translation.max_queue_size, 5);
  EXPECT_EQ(c.speech.options.device, "cuda:1");
  EXPECT_EQ(c.speech.max_queue_size, 7);
  EXPECT_EQ(c.builtin.translation, BuiltinMode::kFallback);
  EXPECT_EQ(c.builtin.speech, BuiltinMode::kOff);
  EXPECT_THAT(c.builtin.apertium_pairs, ::testing::ElementsAre("eng-spa"));
  EXPECT_THAT(c.builtin.espeak_languages, ::testing::ElementsAre("spa_Latn", "eng_Latn"));
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c);
}

TEST(ConfigTest, TheShippedExampleConfigIsValid) {
  ServerConfig c;
  const absl::Status s = ApplyConfigFile(std::string(VOX_SOURCE_DIR) + "/deploy/voxd.toml", &c);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(ValidateConfig(c).ok()) << ValidateConfig(c);
}

TEST(ConfigTest, UnknownKeyIsAnErrorNamingItAndSuggestingTheRightOne) {
  ServerConfig c;
  absl::Status s = ApplyConfigToml("[server]\nlisen = \"x:1\"\n", "voxd.toml", &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("voxd.toml"));
  EXPECT_THAT(s.message(), HasSubstr("'server.lisen'"));
  EXPECT_THAT(s.message(), HasSubstr("did you mean server.listen"));

  s = ApplyConfigToml("[nonsense]\nx = 1\n", "voxd.toml", &c);
  EXPECT_THAT(s.message(), HasSubstr("'nonsense'"));
  s = ApplyConfigToml("listen = \"x:1\"\n", "voxd.toml", &c);  // top level, not in [server]
  EXPECT_THAT(s.message(), HasSubstr("'listen'"));
  s = ApplyConfigToml("[builtin]\nspeech = \"sometimes\"\n", "voxd.toml", &c);
  EXPECT_THAT(s.message(), HasSubstr("'builtin.speech'"));
  EXPECT_THAT(s.message(), HasSubstr("fallback"));
}

TEST(ConfigTest, WrongTypeNamesTheKeyAndLeavesTheConfigUntouched) {
  ServerConfig c;
  absl::Status s =
      ApplyConfigToml("[server]\nlisten = \"a:1\"\nmax_texts_per_call = \"many\"\n", "f.toml", &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'server.max_texts_per_call' must be an integer"));
  EXPECT_EQ(c.listen, ServerConfig().listen);  // all or nothing
}

TEST(ConfigTest, SyntaxErrorGivesFileLineAndColumn) {
  ServerConfig c;
  absl::Status s = ApplyConfigToml("[server]\nlisten = \n", "broken.toml", &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("broken.toml:2:"));
}

TEST(ConfigTest, FlagsOverrideTheConfigFileWhateverTheirOrder) {
  const std::string path = WriteTemp(
      "override.toml", "[server]\nlisten = \"1.2.3.4:5\"\n[models]\ndir = \"/from/file\"\n"
                       "[translation]\nthreads = 4\n");
  ServerConfig c;
  absl::StatusOr<CommandLine> cl = ParseCommandLine(
      {"voxd", "--listen", "127.0.0.1:0", "--config", path, "--threads=2", "--device", "cpu",
       "--max-text-chars", "300", "--glossary-dir=/g"},
      &c);
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->config_path, path);
  EXPECT_EQ(c.listen, "127.0.0.1:0");     // flag before --config still wins
  EXPECT_EQ(c.models_dir, "/from/file");  // from the file
  EXPECT_EQ(c.translation.options.intra_op_threads, 2);
  EXPECT_EQ(c.speech.options.intra_op_threads, 2);
  EXPECT_EQ(c.translation.options.device, "cpu");
  EXPECT_EQ(c.max_text_chars, 300);
  EXPECT_EQ(c.glossary_dir, "/g");
}

TEST(ConfigTest, BadFlagsAreErrorsNamingTheFlag) {
  ServerConfig c;
  auto cl = ParseCommandLine({"voxd", "--modles", "x"}, &c);
  EXPECT_THAT(cl.status().message(), HasSubstr("did you mean --models"));
  cl = ParseCommandLine({"voxd", "--models"}, &c);
  EXPECT_THAT(cl.status().message(), HasSubstr("--models needs a value"));
  cl = ParseCommandLine({"voxd", "--threads", "two"}, &c);
  EXPECT_THAT(cl.status().message(), HasSubstr("--threads: 'two' is not an integer"));
  cl = ParseCommandLine({"voxd", "--max-text-chars", "0"}, &c);
  EXPECT_THAT(cl.status().message(), HasSubstr("--max-text-chars"));
  cl = ParseCommandLine({"voxd", "--verify-checksums", "maybe"}, &c);
  EXPECT_THAT(cl.status().message(), HasSubstr("true, false"));
  cl = ParseCommandLine({"voxd", "stray"}, &c);
  EXPECT_THAT(cl.status().message(), HasSubstr("'stray'"));
  cl = ParseCommandLine({"voxd", "--config", "/no/such/file.toml"}, &c);
  EXPECT_EQ(cl.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(cl.status().message(), HasSubstr("/no/such/file.toml"));
}

TEST(ConfigTest, ValidateNamesTheBadValueAndTheAllowedOnes) {
  ServerConfig c;
  EXPECT_TRUE(ValidateConfig(c).ok()) << "the built-in engines may serve without a models dir";
  c.builtin.translation = c.builtin.speech = BuiltinMode::kOff;
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("--models"));
  c.models_dir = "/m";
  EXPECT_TRUE(ValidateConfig(c).ok());
  c.translation.options.device = "gpu";
  absl::Status s = ValidateConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("translation.device"));
  EXPECT_THAT(s.message(), HasSubstr("'gpu'"));
  EXPECT_THAT(s.message(), HasSubstr("mps"));
  c.translation.options.device = "cuda:1";
  EXPECT_TRUE(ValidateConfig(c).ok());
  c.speech.options.dtype = "int8";
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("bfloat16"));
  c.speech.options.dtype = "";
  c.speech.options.vocoder_dtype = "int8";
  EXPECT_THAT(ValidateConfig(c).message(), ::testing::AllOf(HasSubstr("speech.vocoder_dtype"), HasSubstr("bfloat16")));
  c.speech.options.vocoder_dtype = "float32";
  c.idle_stream_timeout = absl::Milliseconds(500);
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("server.idle_stream_timeout_seconds"));
  c.idle_stream_timeout = absl::ZeroDuration();  // never
  EXPECT_TRUE(ValidateConfig(c).ok());
  c.listen = "localhost";
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("HOST:PORT"));
}

TEST(ConfigTest, SchedulerSettingsPerKindFromTomlAndFlags) {
  ServerConfig c;
  ASSERT_TRUE(ApplyConfigToml(R"(
[translation]
max_batch_size = 16
max_queue_delay_us = 2000
max_queue_size = 100
max_queue_wait_ms = 150
priority_levels = 2
default_deadline_seconds = 2.5
replicas = 2
threads = 1
max_paused_slots = 0
max_pause_seconds = 4

[speech]
max_batch_size = 4
default_deadline_seconds = 0
)", "test.toml", &c)
                  .ok());
  EXPECT_EQ(c.translation.max_batch_size, 16);
  EXPECT_EQ(c.translation.max_queue_delay_us, 2000);
  EXPECT_EQ(c.translation.max_queue_size, 100);
  EXPECT_EQ(c.translation.priority_levels, 2);
  EXPECT_EQ(c.translation.default_deadline, absl::Milliseconds(2500));
  EXPECT_EQ(c.translation.replicas, 2);
  EXPECT_EQ(c.translation.max_paused_slots, 0);
  EXPECT_EQ(c.translation.max_pause, absl::Seconds(4));
  EXPECT_EQ(c.speech.max_batch_size, 4);
  EXPECT_EQ(c.speech.default_deadline, absl::InfiniteDuration());  // 0 = none
  const SchedulerOptions o = SchedulerOptionsFor(c.translation);
  EXPECT_EQ(o.max_batch_size, 16);
  EXPECT_EQ(o.max_queue_size, 100);
  EXPECT_EQ(o.max_queue_wait, absl::Milliseconds(150));
  EXPECT_EQ(SchedulerOptionsFor(c.speech).max_queue_wait, absl::InfiniteDuration());  // 0 = off
  EXPECT_EQ(o.replicas, 2);
  EXPECT_EQ(o.default_deadline, absl::Milliseconds(2500));
  EXPECT_TRUE(ValidateConfig(c, /*cores=*/2).ok()) << ValidateConfig(c, 2);

  auto cl = ParseCommandLine({"voxd", "--max-batch-size", "3", "--queue-size=9", "--replicas", "1",
                              "--default-deadline", "7", "--max-pause", "5",
                              "--max-queue-delay-us", "10", "--priority-levels", "4",
                              "--max-paused-slots", "1", "--max-queue-wait-ms", "40"},
                             &c);
  ASSERT_TRUE(cl.ok()) << cl.status();
  for (const EngineKindConfig* k : {&c.translation, &c.speech}) {
    EXPECT_EQ(k->max_batch_size, 3);
    EXPECT_EQ(k->max_queue_size, 9);
    EXPECT_EQ(k->replicas, 1);
    EXPECT_EQ(k->default_deadline, absl::Seconds(7));
    EXPECT_EQ(k->max_pause, absl::Seconds(5));
    EXPECT_EQ(k->max_queue_delay_us, 10);
    EXPECT_EQ(k->priority_levels, 4);
    EXPECT_EQ(k->max_paused_slots, 1);
    EXPECT_EQ(k->max_queue_wait_ms, 40);
  }
  EXPECT_EQ(ParseCommandLine({"voxd", "--max-batch-size", "0"}, &c).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ConfigTest, BadSchedulerSettingsAreInvalidArgumentNamingTheKey) {
  ServerConfig c;
  c.speech.priority_levels = 1;
  absl::Status s = ValidateConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("speech"));
  EXPECT_THAT(s.message(), HasSubstr("priority_levels=1"));
  c = ServerConfig();
  c.translation.max_batch_size = 0;
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("max_batch_size=0"));
}

TEST(ConfigTest, ReplicasMustNotOversubscribeTheCores) {
  ServerConfig c;
  c.translation.replicas = 2;
  c.translation.options.intra_op_threads = 0;  // "all cores" for each replica
  absl::Status s = ValidateConfig(c, /*cores=*/8);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("translation.threads"));
  EXPECT_THAT(s.message(), HasSubstr("at most 4"));
  c.translation.options.intra_op_threads = 4;
  EXPECT_TRUE(ValidateConfig(c, 8).ok());
  c.translation.replicas = 3;
  s = ValidateConfig(c, 8);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("3 x 4 = 12"));
  EXPECT_THAT(s.message(), HasSubstr("8 cores"));
  // One replica keeps the single-engine rule.
  c.translation.replicas = 1;
  c.translation.options.intra_op_threads = 16;
  EXPECT_TRUE(ValidateConfig(c, 8).ok());
}

}  // namespace
}  // namespace vox
