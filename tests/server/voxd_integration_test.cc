// Integration: the real voxd binary on loopback (port 0) with the tiny NLLB model, and voxctl.
// Goldens come from the Python eager reference (tools/nllb_reference.py via make_tiny_models.py).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/proto/health.grpc.pb.h"
#include "tests/server/proto/reflection.grpc.pb.h"
#include "tests/metrics/scrape.h"
#include "tests/server/voxd_launch.h"
#include "tests/server/voxd_process.h"
#include "vox/v1/discovery.grpc.pb.h"
#include "vox/v1/speech.grpc.pb.h"
#include "vox/v1/translation.grpc.pb.h"

namespace vox {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ChildProcess;

const std::string kTinyModel = std::string(VOX_TINY_DIR) + "/models/nllb-tiny";

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

using testing::ModelsDir;
using testing::StderrPath;

std::string StartVoxd(ChildProcess* voxd, const std::vector<std::string>& extra,
                      const std::string& name) {
  return testing::StartVoxd(voxd, VOXD_BINARY, extra, name);
}

// Runs a command to completion; returns {exit code, stdout}. stderr goes to `stderr_out`.
std::pair<int, std::string> RunToExit(const std::vector<std::string>& argv, const std::string& name,
                                      std::string* stderr_out, absl::Duration timeout) {
  ChildProcess p;
  absl::Status s = p.Start(argv, StderrPath(name));
  EXPECT_TRUE(s.ok()) << s;
  absl::StatusOr<int> code = p.Wait(0, timeout);
  EXPECT_TRUE(code.ok()) << code.status();
  if (stderr_out != nullptr) *stderr_out = p.Stderr();
  return {code.ok() ? *code : -1, p.RestOfStdout()};
}

class VoxdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    models_ = new std::string(ModelsDir("shared", {kTinyModel}));
    voxd_ = new ChildProcess();
    address_ = new std::string(StartVoxd(voxd_, {"--models", *models_, "--threads", "1", "--builtin", "off"}, "shared"));
  }
  static void TearDownTestSuite() {
    delete voxd_;
    delete address_;
    delete models_;
  }

  void SetUp() override {
    ASSERT_FALSE(address_->empty()) << "voxd did not start";
    channel_ = grpc::CreateChannel(*address_, grpc::InsecureChannelCredentials());
    translate_ = v1::TranslationService::NewStub(channel_);
  }

  grpc::Status Translate(const v1::TranslateRequest& request, v1::TranslateResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return translate_->Translate(&context, request, response);
  }

  static v1::TranslateRequest Request(const std::vector<std::string>& texts) {
    v1::TranslateRequest r;
    for (const auto& t : texts) r.add_texts(t);
    r.set_source_language("eng_Latn");
    r.set_target_language("fra_Latn");
    return r;
  }

  static ChildProcess* voxd_;
  static std::string* address_;
  static std::string* models_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TranslationService::Stub> translate_;
};

ChildProcess* VoxdTest::voxd_ = nullptr;
std::string* VoxdTest::address_ = nullptr;
std::string* VoxdTest::models_ = nullptr;

// Golden cases whose greedy decisions are not near-ties (a near-tie may flip on another kernel).
std::vector<nlohmann::json> ClearGoldenCases() {
  const nlohmann::json golden = ReadJson(std::string(VOX_TINY_DIR) + "/golden/nllb-tiny.json");
  std::vector<nlohmann::json> cases;
  for (const auto& c : golden["cases"]) {
    if (c["greedy"]["min_margin"].get<double>() >= 1e-3) cases.push_back(c);
  }
  return cases;
}

TEST_F(VoxdTest, TranslateRoundTripEqualsTheGoldenGreedyOutput) {
  const std::vector<nlohmann::json> cases = ClearGoldenCases();
  ASSERT_FALSE(cases.empty());
  int checked = 0;
  for (const auto& c : cases) {
    v1::TranslateRequest request;
    request.add_texts(c["text"].get<std::string>());
    request.set_source_language(c["source"].get<std::string>());
    request.set_target_language(c["target"].get<std::string>());
    request.mutable_options()->set_max_length(c["max_length"].get<int>());
    v1::TranslateResponse response;
    grpc::Status s = Translate(request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(response.translations_size(), 1);
    EXPECT_EQ(response.translations(0).text(), c["greedy"]["text"].get<std::string>())
        << c["text"];
    std::vector<int64_t> ids(response.translations(0).token_ids().begin(),
                             response.translations(0).token_ids().end());
    EXPECT_EQ(ids, c["greedy"]["ids"].get<std::vector<int64_t>>()) << c["text"];
    EXPECT_EQ(response.model(), "nllb-tiny");
    ++checked;
  }
  EXPECT_GE(checked, 1);
}

TEST_F(VoxdTest, SeveralTextsInOneCallComeBackInOrder) {
  const std::vector<nlohmann::json> cases = ClearGoldenCases();
  v1::TranslateRequest request;
  std::vector<std::string> expected;
  for (const auto& c : cases) {
    if (c["source"] != "eng_Latn" || c["target"] != "fra_Latn" ||
        c["max_length"].get<int>() != cases[0]["max_length"].get<int>()) {
      continue;
    }
    request.add_texts(c["text"].get<std::string>());
    expected.push_back(c["greedy"]["text"].get<std::string>());
  }
  ASSERT_FALSE(expected.empty()) << "no eng->fra golden case";
  if (expected.size() == 1) {  // a batch of the same text twice still checks order and batching
    request.add_texts(request.texts(0));
    expected.push_back(expected[0]);
  }
  request.set_source_language("eng_Latn");
  request.set_target_language("fra_Latn");
  request.mutable_options()->set_max_length(cases[0]["max_length"].get<int>());
  v1::TranslateResponse response;
  ASSERT_TRUE(Translate(request, &response).ok());
  ASSERT_EQ(response.translations_size(), static_cast<int>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(response.translations(static_cast<int>(i)).text(), expected[i]);
  }
}

TEST_F(VoxdTest, HealthIsServingForTheServerAndEachService) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const std::string service : {"", "vox.v1.TranslationService", "vox.v1.DiscoveryService"}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status s = health->Check(&context, request, &response);
    ASSERT_TRUE(s.ok()) << service << ": " << s.error_message();
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("vox.v1.NoSuchService");
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_EQ(health->Check(&context, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(VoxdTest, ReflectionListsTheServicesAndServesTheirDescriptors) {
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(channel_);
  grpc::ClientContext context;
  auto stream = reflection->ServerReflectionInfo(&context);
  grpc::reflection::v1alpha::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> names;
  for (const auto& s : response.list_services_response().service()) names.push_back(s.name());
  EXPECT_THAT(names, ::testing::IsSupersetOf({"vox.v1.TranslationService",
                                              "vox.v1.DiscoveryService", "grpc.health.v1.Health"}));

  grpc::reflection::v1alpha::ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol("vox.v1.TranslationService");
  ASSERT_TRUE(stream->Write(symbol));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_GE(response.file_descriptor_response().file_descriptor_proto_size(), 1);
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(response.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.name(), "vox/v1/translation.proto");
  ASSERT_GE(file.service_size(), 1);
  EXPECT_EQ(file.service(0).method(0).name(), "Translate");
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(VoxdTest, ListModelsReportsTheTinyModelOnCpuInFloat32) {
  auto discovery = v1::DiscoveryService::NewStub(channel_);
  grpc::ClientContext context;
  v1::ListModelsResponse response;
  ASSERT_TRUE(discovery->ListModels(&context, {}, &response).ok());
  ASSERT_EQ(response.models_size(), 1);
  const v1::Model& m = response.models(0);
  EXPECT_EQ(m.name(), "nllb-tiny");
  EXPECT_EQ(m.kind(), "translation");
  EXPECT_EQ(m.architecture(), "nllb-m2m100");
  EXPECT_EQ(m.device(), "cpu");
  EXPECT_EQ(m.dtype(), "float32");
  const nlohmann::json manifest = ReadJson(kTinyModel + "/manifest.json");
  EXPECT_EQ(m.languages_size(), static_cast<int>(manifest["languages"].size()));

  grpc::ClientContext lang_context;
  v1::ListLanguagesResponse languages;
  ASSERT_TRUE(discovery->ListLanguages(&lang_context, {}, &languages).ok());
  EXPECT_EQ(languages.languages_size(), m.languages_size());
}

TEST_F(VoxdTest, EveryBadInputGetsInvalidArgumentWithAHelpfulMessage) {
  const nlohmann::json manifest = ReadJson(kTinyModel + "/manifest.json");
  const int max_source_tokens = manifest["max_source_tokens"].get<int>();
  std::string too_long;
  for (int i = 0; i < max_source_tokens + 8; ++i) too_long += "hello world ";

  struct Case {
    const char* name;
    v1::TranslateRequest request;
    std::vector<std::string> expected;
  };
  std::vector<Case> cases;
  cases.push_back({"unknown language", Request({"Hello"}), {"eng_latn", "did you mean eng_Latn"}});
  cases.back().request.set_source_language("eng_latn");
  cases.push_back({"unknown target", Request({"Hello"}), {"target_language", "xxx_Yyyy"}});
  cases.back().request.set_target_language("xxx_Yyyy");
  cases.push_back({"over server.max_text_chars", Request({"Hello", std::string(100001, 'a')}),
                   {"texts[1] is 100001 characters", "limit is 100000"}});
  cases.push_back({"too long", Request({too_long}),
                   {"text 0 is too long", "at most " + std::to_string(max_source_tokens)}});
  cases.push_back({"too many texts", Request(std::vector<std::string>(65, "Hi")), {"65", "64"}});
  cases.push_back({"huge beam", Request({"Hello"}), {"beam"}});
  cases.back().request.mutable_options()->set_beam_size(1000);
  cases.push_back({"max length beyond positions", Request({"Hello"}), {"max"}});
  cases.back().request.mutable_options()->set_max_length(1 << 20);
  cases.push_back({"negative max length", Request({"Hello"}), {"options.max_length"}});
  cases.back().request.mutable_options()->set_max_length(-5);
  for (const Case& c : cases) {
    v1::TranslateResponse response;
    grpc::Status s = Translate(c.request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.name << ": " << s.error_message();
    for (const std::string& e : c.expected) {
      EXPECT_THAT(s.error_message(), HasSubstr(e)) << c.name;
    }
  }
  // Still serving after all that.
  v1::TranslateResponse response;
  EXPECT_TRUE(Translate(Request({"Hello"}), &response).ok());
}

TEST_F(VoxdTest, AccessLogHasOneLinePerCallWithTheRequestId) {
  grpc::ClientContext context;
  context.AddMetadata("x-request-id", "integration-77");
  v1::TranslateResponse response;
  ASSERT_TRUE(translate_->Translate(&context, Request({"Hello"}), &response).ok());
  auto it = context.GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(it, context.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "integration-77");
  // The log line is written before the status reaches the client.
  const std::string log = voxd_->Stderr();
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, "request_id=integration-77")) {
      ++lines;
      EXPECT_THAT(std::string(line), HasSubstr("rpc=/vox.v1.TranslationService/Translate"));
      EXPECT_THAT(std::string(line), HasSubstr("status=OK"));
      EXPECT_THAT(std::string(line), HasSubstr("duration_ms="));
    }
  }
  EXPECT_EQ(lines, 1) << log;
}

TEST_F(VoxdTest, VoxctlTranslatesAndListsAndReportsErrors) {
  const std::vector<nlohmann::json> cases = ClearGoldenCases();
  const auto& c = cases[0];
  std::string err;
  auto [code, out] = RunToExit(
      {VOXCTL_BINARY, "--server", *address_, "translate", "--from", c["source"].get<std::string>(),
       "--to", c["target"].get<std::string>(), "--max-length",
       std::to_string(c["max_length"].get<int>()), c["text"].get<std::string>()},
      "voxctl-translate", &err, absl::Seconds(60));
  EXPECT_EQ(code, 0) << err;
  EXPECT_EQ(out, c["greedy"]["text"].get<std::string>() + "\n");

  std::tie(code, out) = RunToExit({VOXCTL_BINARY, "--server", *address_, "models"},
                                  "voxctl-models", &err, absl::Seconds(60));
  EXPECT_EQ(code, 0) << err;
  EXPECT_THAT(out, HasSubstr("nllb-tiny"));
  EXPECT_THAT(out, HasSubstr("device=cpu dtype=float32"));

  std::tie(code, out) =
      RunToExit({VOXCTL_BINARY, "--server", *address_, "translate", "--from", "eng_latn", "--to",
                 "fra_Latn", "Hello"},
                "voxctl-bad", &err, absl::Seconds(60));
  EXPECT_EQ(code, 1);
  EXPECT_THAT(err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(err, HasSubstr("did you mean eng_Latn"));
  EXPECT_EQ(out, "");

  std::tie(code, out) = RunToExit({VOXCTL_BINARY, "--server", *address_, "translate", "Hello"},
                                  "voxctl-usage", &err, absl::Seconds(60));
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("--from"));
}

// --- Start-up failures and shutdown: each starts its own voxd. ---

TEST(VoxdStartupTest, TruncatedModelFileStopsStartUpNamingTheFile) {
  const std::string models = ModelsDir("truncated", {kTinyModel});
  const fs::path model_ts = fs::path(models) / "nllb-tiny" / "model.ts";
  fs::resize_file(model_ts, fs::file_size(model_ts) / 2);
  std::string err;
  auto [code, out] = RunToExit({VOXD_BINARY, "--models", models, "--listen", "127.0.0.1:0"},
                               "truncated", &err, absl::Seconds(120));
  EXPECT_NE(code, 0);
  EXPECT_THAT(err, HasSubstr("model.ts"));
  EXPECT_THAT(err, HasSubstr("nllb-tiny"));
  EXPECT_EQ(out, "") << "voxd must not claim to be listening";
}

TEST(VoxdStartupTest, ManifestMissingAFieldStopsStartUpNamingTheFileAndField) {
  for (const std::string field : {"architecture", "languages", "files"}) {
    const std::string models = ModelsDir("manifest-" + field, {kTinyModel});
    const fs::path manifest_path = fs::path(models) / "nllb-tiny" / "manifest.json";
    nlohmann::json manifest = ReadJson(manifest_path.string());
    manifest.erase(field);
    std::ofstream(manifest_path) << manifest.dump(1);
    std::string err;
    auto [code, out] = RunToExit({VOXD_BINARY, "--models", models, "--listen", "127.0.0.1:0"},
                                 "manifest-" + field, &err, absl::Seconds(120));
    EXPECT_NE(code, 0) << field;
    EXPECT_THAT(err, HasSubstr("manifest.json")) << field;
    EXPECT_THAT(err, HasSubstr(field)) << err;
    EXPECT_EQ(out, "");
  }
}

TEST(VoxdStartupTest, NoModelsIsAClearError) {
  const std::string models = ModelsDir("empty", {});
  std::string err;
  auto [code, out] = RunToExit(
      {VOXD_BINARY, "--models", models, "--listen", "127.0.0.1:0", "--builtin", "off"}, "empty",
      &err, absl::Seconds(60));
  EXPECT_NE(code, 0);
  EXPECT_THAT(err, HasSubstr("no models found in " + models));
}

TEST(VoxdStartupTest, BadConfigKeyIsAnErrorNamingIt) {
  const std::string config = (fs::path(::testing::TempDir()) / "bad.toml").string();
  std::ofstream(config) << "[server]\nmax_text_per_call = 3\n";
  std::string err;
  auto [code, out] = RunToExit({VOXD_BINARY, "--config", config}, "bad-config", &err,
                               absl::Seconds(60));
  EXPECT_EQ(code, 2);
  EXPECT_THAT(err, HasSubstr("server.max_text_per_call"));
  EXPECT_THAT(err, HasSubstr("did you mean server.max_texts_per_call"));
}

TEST(VoxdStartupTest, ConfigFileIsReadAndFlagsOverrideIt) {
  const std::string models = ModelsDir("config", {kTinyModel});
  const std::string config = (fs::path(::testing::TempDir()) / "voxd-test.toml").string();
  std::ofstream(config) << "[server]\nlisten = \"127.0.0.1:1\"\nmax_texts_per_call = 2\n"
                        << "[models]\ndir = \"" << models << "\"\n";
  ChildProcess voxd;
  // --listen overrides the file's port 1 (which could not be bound).
  const std::string address = StartVoxd(&voxd, {"--config", config, "--builtin", "off"}, "config");
  ASSERT_FALSE(address.empty());
  auto stub = v1::TranslationService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  v1::TranslateRequest request;
  for (int i = 0; i < 3; ++i) request.add_texts("Hello");
  request.set_source_language("eng_Latn");
  request.set_target_language("fra_Latn");
  grpc::ClientContext context;
  v1::TranslateResponse response;
  grpc::Status s = stub->Translate(&context, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("limit is 2"));
  EXPECT_EQ(*voxd.Wait(SIGTERM, absl::Seconds(60)), 0);
}

TEST(VoxdStartupTest, SigtermDrainsAndExitsZeroAfterPrintingExactlyOneLine) {
  const std::string models = ModelsDir("sigterm", {kTinyModel});
  ChildProcess voxd;
  const std::string address = StartVoxd(&voxd, {"--models", models, "--builtin", "off"}, "sigterm");
  ASSERT_FALSE(address.empty());
  auto stub = v1::TranslationService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  v1::TranslateRequest request;
  request.add_texts("Hello");
  request.set_source_language("eng_Latn");
  request.set_target_language("fra_Latn");
  grpc::ClientContext context;
  v1::TranslateResponse response;
  ASSERT_TRUE(stub->Translate(&context, request, &response).ok());
  absl::StatusOr<int> code = voxd.Wait(SIGTERM, absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << voxd.Stderr();
  EXPECT_EQ(voxd.RestOfStdout(), "");
  EXPECT_THAT(voxd.Stderr(), HasSubstr("SIGTERM received"));
}

#ifdef __linux__
// The value of `name` in the environment process `pid` was (last) executed with; "" if unset.
std::string InitialEnv(pid_t pid, const std::string& name) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/environ"), std::ios::binary);
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    if (absl::StartsWith(entry, name + "=")) return entry.substr(name.size() + 1);
  }
  return "";
}

TEST(VoxdStartupTest, StartupSettingsAreSetUnlessTheUserChoseOtherwise) {
  const std::string models = ModelsDir("omp", {kTinyModel});
  for (const char* given : {static_cast<const char*>(nullptr), "ACTIVE"}) {
    SCOPED_TRACE(given == nullptr ? "OMP_WAIT_POLICY unset" : "OMP_WAIT_POLICY=ACTIVE");
    ChildProcess voxd;
    voxd.SetEnv("OMP_WAIT_POLICY", given);
    // A user's hugetlb choice is kept as given. (glibc rewrites the variable's memory, which
    // /proc shows, as it parses it, keeping only its first tunable there: one is set here.)
    const char* tunables = given == nullptr ? nullptr : "glibc.malloc.hugetlb=0";
    voxd.SetEnv("GLIBC_TUNABLES", tunables);
    const std::string address =
        StartVoxd(&voxd, {"--models", models, "--builtin", "off", "--threads", "2"}, "omp");
    ASSERT_FALSE(address.empty());
    // Re-executed in place: the same process, now with what libgomp and glibc read at start.
    EXPECT_EQ(InitialEnv(voxd.pid(), "OMP_WAIT_POLICY"), given == nullptr ? "PASSIVE" : given);
#ifdef __GLIBC__
    EXPECT_EQ(InitialEnv(voxd.pid(), "GLIBC_TUNABLES"), given == nullptr ? "glibc.malloc.hugetlb=1" : tunables);
#endif
    absl::StatusOr<int> code = voxd.Wait(SIGTERM, absl::Seconds(60));
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0) << voxd.Stderr();
  }
}
#endif  // __linux__

// What Debian's `apertium -u eng-spa` prints for `text` (the reference for the built-in engine).
std::string ApertiumCommand(const std::string& text) {
  const std::string path = (fs::path(::testing::TempDir()) / "apertium-in.txt").string();
  std::ofstream(path) << text << "\n";
  std::string out;
  if (FILE* p = ::popen(("apertium -u eng-spa < " + path).c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

TEST(VoxdBuiltinTest, WithoutModelsTheBuiltinEnginesTranslateAndSpeak) {
  const std::string models = ModelsDir("builtin", {});
  ChildProcess voxd;
  const std::string address = StartVoxd(&voxd, {"--models", models}, "builtin");
  ASSERT_FALSE(address.empty());
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());

  auto discovery = v1::DiscoveryService::NewStub(channel);
  grpc::ClientContext models_context;
  v1::ListModelsResponse listed;
  ASSERT_TRUE(discovery->ListModels(&models_context, {}, &listed).ok());
  std::vector<std::string> architectures;
  for (const auto& m : listed.models()) architectures.push_back(m.architecture());
  EXPECT_THAT(architectures, ::testing::UnorderedElementsAre("apertium", "espeak-ng"));

  const std::string text = "Hello, how are you?";
  auto translate = v1::TranslationService::NewStub(channel);
  v1::TranslateRequest request;
  request.add_texts(text);
  request.set_source_language("eng_Latn");
  request.set_target_language("spa_Latn");
  grpc::ClientContext context;
  v1::TranslateResponse response;
  grpc::Status s = translate->Translate(&context, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.translations(0).text(), ApertiumCommand(text));
  EXPECT_EQ(response.model(), "apertium");

  auto speech = v1::SpeechService::NewStub(channel);
  v1::SynthesizeRequest speak;
  speak.set_text(response.translations(0).text());
  speak.set_language("spa_Latn");
  grpc::ClientContext speak_context;
  auto reader = speech->Synthesize(&speak_context, speak);
  v1::SynthesizeResponse msg;
  std::string ogg;
  v1::SynthesisSummary summary;
  while (reader->Read(&msg)) {
    if (msg.has_audio()) ogg += msg.audio().data();
    if (msg.has_summary()) summary = msg.summary();
  }
  grpc::Status speak_status = reader->Finish();
  ASSERT_TRUE(speak_status.ok()) << speak_status.error_message();
  EXPECT_EQ(ogg.substr(0, 4), "OggS");
  EXPECT_GT(summary.audio_seconds(), 0.5);  // a short sentence, spoken
  EXPECT_LT(summary.audio_seconds(), 10.0);
  EXPECT_EQ(summary.voice(), "espeak:es");

  // voxctl speak writes a playable file and reports its timings.
  const std::string out_path = (fs::path(::testing::TempDir()) / "voxctl-speak.ogg").string();
  std::string err;
  auto [code, out] = RunToExit({VOXCTL_BINARY, "--server", address, "speak", "--lang", "spa_Latn",
                               "--out", out_path, "Hola"},
                              "voxctl-speak", &err, absl::Seconds(60));
  EXPECT_EQ(code, 0) << err;
  EXPECT_THAT(out, HasSubstr("time to first audio"));
  EXPECT_THAT(out, HasSubstr("real-time factor"));
  EXPECT_GT(fs::file_size(out_path), 1000u);
  EXPECT_EQ(*voxd.Wait(SIGTERM, absl::Seconds(60)), 0);
}

// Child processes of `parent` whose command line contains `needle`.
std::vector<pid_t> ChildrenMatching(pid_t parent, const std::string& needle) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::vector<std::string> fields = absl::StrSplit(line.substr(paren + 2), ' ');
    if (fields.size() < 2 || fields[0] == "Z" || fields[1] != std::to_string(parent)) continue;
    std::ifstream cmdline(entry.path() / "cmdline");
    const std::string args((std::istreambuf_iterator<char>(cmdline)),
                           std::istreambuf_iterator<char>());
    if (args.find(needle) != std::string::npos) out.push_back(std::stoi(name));
  }
  return out;
}

using testing::MetricsPort;

TEST(VoxdBuiltinTest, KilledApertiumStageIsRestartedAndCountedInTheMetrics) {
  const std::string models = ModelsDir("builtin-restart", {});
  ChildProcess voxd;
  const std::string address =
      StartVoxd(&voxd, {"--models", models, "--metrics-listen", "127.0.0.1:0"}, "restart");
  ASSERT_FALSE(address.empty());
  const int port = MetricsPort(voxd);
  ASSERT_GT(port, 0) << voxd.Stderr();
  const std::vector<std::string> eng_spa = {"engine=\"apertium\"", "pipeline=\"eng-spa\""};
  const std::string before = testing::Body(testing::HttpGet(port, "/metrics"));
  ASSERT_THAT(before, HasSubstr("vox_model_info{"));
  EXPECT_FALSE(testing::Sample(before, "vox_pipeline_restarts_total", eng_spa) > 0);  // NaN or 0

  // The first stage of the eng-spa pipeline (its analyser) dies.
  const std::vector<pid_t> victims = ChildrenMatching(voxd.pid(), "eng-spa.automorf.bin");
  ASSERT_EQ(victims.size(), 1u) << "expected one eng-spa analyser under voxd";
  ASSERT_EQ(::kill(victims[0], SIGKILL), 0);

  auto translate = v1::TranslationService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  const std::string text = "The weather is very nice today.";
  v1::TranslateRequest request;
  request.add_texts(text);
  request.set_source_language("eng_Latn");
  request.set_target_language("spa_Latn");
  // The death may be found before the call (the call is served) or during it (the call fails
  // with UNAVAILABLE saying it was restarted); either way the next call is served.
  grpc::Status s;
  v1::TranslateResponse response;
  for (int attempt = 0; attempt < 2; ++attempt) {
    grpc::ClientContext context;
    response.Clear();
    s = translate->Translate(&context, request, &response);
    if (s.ok()) break;
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("restarted"));
  }
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.translations(0).text(), ApertiumCommand(text));

  const std::string after = testing::Body(testing::HttpGet(port, "/metrics"));
  EXPECT_EQ(testing::Sample(after, "vox_pipeline_restarts_total", eng_spa), 1) << after;
  EXPECT_THAT(voxd.Stderr(), HasSubstr("restarting the eng-spa pipeline"));
  EXPECT_EQ(*voxd.Wait(SIGTERM, absl::Seconds(60)), 0);
}


// Issue 15's goal: a 5,000-word multi-paragraph document in one Translate call comes back with
// every sentence, in order, paragraphs kept: one translation per source sentence. The sentences
// are the tiny model's clear golden eng->fra cases (no near-tie on any CPU), in an order that is
// not periodic, so each output position is checked against its own sentence's golden output.
TEST_F(VoxdTest, AFiveThousandWordDocumentComesBackSentenceBySentence) {
  std::vector<nlohmann::json> sentences;
  for (const auto& c : ClearGoldenCases()) {
    if (c["source"] == "eng_Latn" && c["target"] == "fra_Latn") sentences.push_back(c);
  }
  ASSERT_GE(sentences.size(), 3u) << "the golden set has too few eng->fra cases";
  std::string document, expected;
  std::vector<int64_t> expected_ids;
  int words = 0, count = 0, paragraphs = 1;
  uint32_t state = 12345;
  while (words < 5000) {
    state = state * 1103515245u + 12345u;  // fixed sequence: the same document every run
    const nlohmann::json& c = sentences[(state >> 16) % sentences.size()];
    const std::string text = c["text"].get<std::string>();
    std::string gap = count == 0 ? "" : " ";
    if (count > 0 && (state >> 8) % 7 == 0) {
      gap = "\n\n";
      ++paragraphs;
    } else if (count > 0 && (state >> 8) % 11 == 1) {
      gap = "\n";
    }
    document += gap + text;
    expected += gap + c["greedy"]["text"].get<std::string>();
    for (int64_t id : c["greedy"]["ids"].get<std::vector<int64_t>>()) expected_ids.push_back(id);
    const std::vector<std::string> text_words = absl::StrSplit(text, ' ', absl::SkipEmpty());
    words += static_cast<int>(text_words.size());
    ++count;
  }
  ASSERT_GE(paragraphs, 20);
  v1::TranslateRequest request = Request({document});
  request.mutable_options()->set_max_length(sentences[0]["max_length"].get<int>());
  v1::TranslateResponse response;
  grpc::Status s = Translate(request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.translations_size(), 1);
  EXPECT_EQ(response.translations(0).sentence_count(), count);
  EXPECT_EQ(response.translations(0).text(), expected);
  EXPECT_EQ(std::vector<int64_t>(response.translations(0).token_ids().begin(),
                                 response.translations(0).token_ids().end()),
            expected_ids);
}

// source_language "auto" through voxd: each text detected on its own, reported, translated from
// the detected language (so the output equals the explicit-language call's).
TEST_F(VoxdTest, AutoDetectsTheSourceOfEachText) {
  const std::vector<std::string> texts = {"Je voudrais une tasse de café au lait, s'il vous plaît.",
                                          "Where is the nearest train station?"};
  v1::TranslateRequest request = Request(texts);
  request.set_source_language("auto");
  request.set_target_language("deu_Latn");
  v1::TranslateResponse response;
  grpc::Status s = Translate(request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.translations_size(), 2);
  EXPECT_EQ(response.translations(0).detected_language(), "fra_Latn");
  EXPECT_EQ(response.translations(1).detected_language(), "eng_Latn");
  for (int i = 0; i < 2; ++i) {
    EXPECT_GT(response.translations(i).detection_confidence(), 0.5f);
    v1::TranslateRequest explicit_request = Request({texts[i]});
    explicit_request.set_source_language(response.translations(i).detected_language());
    explicit_request.set_target_language("deu_Latn");
    v1::TranslateResponse one;
    ASSERT_TRUE(Translate(explicit_request, &one).ok());
    EXPECT_EQ(one.translations(0).token_ids_size(), response.translations(i).token_ids_size());
  }
  request = Request({"1234 5678 !!!"});
  request.set_source_language("auto");
  s = Translate(request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("cannot tell its language"));
}

// Protected terms with a real engine that copies placeholders (Apertium passes unknown tokens
// through): request terms and the server glossary file are all placed, none reported.
TEST(VoxdBuiltinTest, ApertiumPlacesEveryProtectedTerm) {
  const std::string models = ModelsDir("builtin-terms", {});
  const fs::path glossaries = fs::path(::testing::TempDir()) / "voxd-glossaries";
  fs::remove_all(glossaries);
  fs::create_directories(glossaries);
  std::ofstream(glossaries / "eng_Latn-spa_Latn.tsv")
      << "# server glossary for the test\nhouse\tvivienda\nVoxCorp\n";
  ChildProcess voxd;
  const std::string address = StartVoxd(
      &voxd, {"--models", models, "--glossary-dir", glossaries.string()}, "builtin-terms");
  ASSERT_FALSE(address.empty());
  auto translate = v1::TranslationService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  const std::string text = "I see Acme in the house. VoxCorp sells the Big Cat.";
  // Without protection Apertium changes "Acme" (to "Acmé") and translates "house".
  const std::string plain = ApertiumCommand(text);
  ASSERT_THAT(plain, ::testing::Not(HasSubstr("Acme ")));
  v1::TranslateRequest request;
  request.add_texts(text);
  request.set_source_language("eng_Latn");
  request.set_target_language("spa_Latn");
  request.mutable_options()->add_do_not_translate("Acme");
  (*request.mutable_options()->mutable_glossary())["Big Cat"] = "Gran Gato";
  grpc::ClientContext context;
  v1::TranslateResponse response;
  grpc::Status s = translate->Translate(&context, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const v1::Translation& t = response.translations(0);
  EXPECT_EQ(t.sentence_count(), 2);
  EXPECT_THAT(t.text(), HasSubstr("Acme "));
  EXPECT_THAT(t.text(), HasSubstr("vivienda"));
  EXPECT_THAT(t.text(), HasSubstr("VoxCorp"));
  EXPECT_THAT(t.text(), HasSubstr("Gran Gato"));
  EXPECT_EQ(t.text().find("[T"), std::string::npos) << t.text();
  EXPECT_EQ(t.unplaced_terms_size(), 0) << t.text();
  EXPECT_EQ(*voxd.Wait(SIGTERM, absl::Seconds(60)), 0);
}

// A bad glossary file stops start-up with its file and line.
TEST(VoxdBuiltinTest, ABadGlossaryFileStopsStartUpNamingTheLine) {
  const fs::path glossaries = fs::path(::testing::TempDir()) / "voxd-bad-glossaries";
  fs::remove_all(glossaries);
  fs::create_directories(glossaries);
  std::ofstream(glossaries / "eng_Latn-spa_Latn.tsv") << "house\tcasa\nhouse\thogar\n";
  std::string err;
  auto [code, out] = RunToExit({VOXD_BINARY, "--listen", "127.0.0.1:0", "--models",
                                ModelsDir("bad-glossary", {}), "--glossary-dir",
                                glossaries.string()},
                               "bad-glossary", &err, absl::Seconds(120));
  EXPECT_NE(code, 0);
  EXPECT_THAT(err, HasSubstr("eng_Latn-spa_Latn.tsv:2"));
  EXPECT_THAT(err, HasSubstr("listed twice"));
}

}  // namespace
}  // namespace vox

#if VOX_TEST_XTTS
namespace vox {
namespace {

const std::string kTinyXtts = std::string(VOX_TINY_DIR) + "/models/xtts-tiny";

TEST(VoxdSpeechTest, SynthesizeWithTheTinyXttsStreamsOggAndCancellationStopsTheEngine) {
  const std::string models = ModelsDir("xtts", {kTinyXtts});
  ChildProcess voxd;
  const std::string address =
      StartVoxd(&voxd, {"--models", models, "--builtin", "off", "--threads", "1"}, "xtts");
  ASSERT_FALSE(address.empty());
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto discovery = v1::DiscoveryService::NewStub(channel);
  grpc::ClientContext voices_context;
  v1::ListVoicesRequest voices_request;
  voices_request.set_language("eng_Latn");
  v1::ListVoicesResponse voices;
  ASSERT_TRUE(discovery->ListVoices(&voices_context, voices_request, &voices).ok());
  ASSERT_GE(voices.voices_size(), 1);

  auto speech = v1::SpeechService::NewStub(channel);
  v1::SynthesizeRequest request;
  request.set_text("Hello, how are you today?");
  request.set_language("eng_Latn");
  request.mutable_options()->set_greedy(true);
  {
    grpc::ClientContext context;
    auto reader = speech->Synthesize(&context, request);
    v1::SynthesizeResponse msg;
    std::vector<v1::SynthesizeResponse> messages;
    while (reader->Read(&msg)) messages.push_back(msg);
    grpc::Status s = reader->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << voxd.Stderr();
    ASSERT_GE(messages.size(), 3u);
    EXPECT_TRUE(messages.front().has_header());
    EXPECT_EQ(messages.front().header().sample_rate_hz(), 24000);
    ASSERT_TRUE(messages.back().has_summary());
    std::string ogg;
    for (const auto& m : messages) {
      if (m.has_audio()) ogg += m.audio().data();
    }
    EXPECT_EQ(ogg.substr(0, 4), "OggS");
    EXPECT_EQ(messages.back().summary().voice(), voices.voices(0).name());
    EXPECT_GT(messages.back().summary().total_samples(), 0);
    EXPECT_GT(messages.back().summary().codes(), 0);
  }
  {
    // Cancel after the first audio: the call ends CANCELLED, and the access-log line (written
    // only once the engine has returned) shows the engine stopped.
    grpc::ClientContext context;
    context.AddMetadata("x-request-id", "cancel-me");
    request.set_text(
        "This is a much longer sentence that keeps the tiny model busy for a good while, and "
        "then another one follows it so that there is plenty left to cancel.");
    auto reader = speech->Synthesize(&context, request);
    v1::SynthesizeResponse msg;
    bool got_audio = false;
    while (!got_audio && reader->Read(&msg)) got_audio = msg.has_audio();
    context.TryCancel();
    while (reader->Read(&msg)) {
    }
    const grpc::Status s = reader->Finish();
    if (got_audio && s.error_code() == grpc::StatusCode::CANCELLED) {
      std::string log;
      for (int i = 0; i < 6000 && !absl::StrContains(log, "request_id=cancel-me"); ++i) {
        absl::SleepFor(absl::Milliseconds(10));
        log = voxd.Stderr();
      }
      EXPECT_THAT(log, HasSubstr("rpc=/vox.v1.SpeechService/Synthesize status=CANCELLED"));
    } else {
      // The whole utterance was done before the cancel arrived: nothing left to stop.
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
  }
  EXPECT_EQ(*voxd.Wait(SIGTERM, absl::Seconds(60)), 0);
}

}  // namespace
}  // namespace vox
#endif  // VOX_TEST_XTTS
