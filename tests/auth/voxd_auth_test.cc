// Integration: the real voxd with TLS, mutual TLS and bearer tokens on loopback (tiny NLLB for
// translation, espeak-ng for speech), certificates made with openssl at run time.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/token_file.h"
#include "tests/auth/test_certs.h"
#include "tests/metrics/scrape.h"
#include "tests/server/proto/health.grpc.pb.h"
#include "tests/server/proto/reflection.grpc.pb.h"
#include "tests/server/voxd_launch.h"
#include "tests/server/voxd_process.h"
#include "vox/v1/discovery.grpc.pb.h"
#include "vox/v1/speech.grpc.pb.h"
#include "vox/v1/speech_translation.grpc.pb.h"
#include "vox/v1/translation.grpc.pb.h"

namespace vox {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::CertFiles;
using testing::ChildProcess;

const std::string kTinyModel = std::string(VOX_TINY_DIR) + "/models/nllb-tiny";

// ctest runs each test of this file as its own process, two at a time: every file name a
// process makes carries its pid.
std::string Unique(const std::string& name) { return absl::StrCat(name, "-", ::getpid()); }

std::string Dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/voxd-auth-" + Unique(name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address, const CertFiles& ca,
                                          const CertFiles* client = nullptr) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = testing::ReadAll(ca.cert);
  if (client != nullptr) {
    options.pem_cert_chain = testing::ReadAll(client->cert);
    options.pem_private_key = testing::ReadAll(client->key);
  }
  return grpc::CreateChannel(address, grpc::SslCredentials(options));
}

void SetDeadline(grpc::ClientContext* context, absl::Duration d = absl::Seconds(20)) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + d));
}

grpc::Status ListModels(const std::shared_ptr<grpc::Channel>& channel, const std::string& token) {
  auto stub = v1::DiscoveryService::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(5));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  v1::ListModelsResponse response;
  return stub->ListModels(&context, v1::ListModelsRequest(), &response);
}

std::string TokenFile(const std::string& dir, const std::string& body) {
  const std::string path = dir + "/tokens.toml";
  std::ofstream(path) << body;
  return path;
}

std::string Token(const std::string& name, const std::string& secret, const std::string& extra) {
  return absl::StrCat("[[token]]\nname = \"", name, "\"\nsha256 = \"", Sha256Hex(secret), "\"\n",
                      extra, "\n");
}

// One voxd with TLS and tokens for the whole suite.
class TokenVoxdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(Dir("tokens"));
    ca_ = new CertFiles(testing::MakeCa(*dir_, "ca"));
    const CertFiles server = testing::MakeLeaf(*dir_, "server", *ca_);
    const std::string tokens = TokenFile(
        *dir_, Token("full", "secret-full", "services = [\"*\"]") +
                   Token("translator", "secret-translator",
                         "services = [\"vox.v1.TranslationService\"]") +
                   Token("speaker", "secret-speaker", "services = [\"vox.v1.SpeechService\"]") +
                   Token("expired", "secret-expired",
                         "services = [\"*\"]\nexpires = \"2021-06-01T00:00:00Z\"") +
                   Token("single", "secret-single", "services = [\"*\"]\nconcurrent_streams = 1"));
    voxd_ = new ChildProcess();
    address_ = new std::string(testing::StartVoxd(
        voxd_, VOXD_BINARY,
        {"--models", testing::ModelsDir(Unique("auth"), {kTinyModel}), "--threads", "1",
         "--tls-cert", server.cert, "--tls-key", server.key, "--token-file", tokens,
         "--metrics-listen", "127.0.0.1:0"},
        Unique("auth-tokens")));
  }
  static void TearDownTestSuite() {
    delete voxd_;
    delete address_;
    delete ca_;
    delete dir_;
  }
  void SetUp() override { ASSERT_FALSE(address_->empty()) << "voxd did not start"; }

  static std::string* dir_;
  static CertFiles* ca_;
  static ChildProcess* voxd_;
  static std::string* address_;
};
std::string* TokenVoxdTest::dir_ = nullptr;
CertFiles* TokenVoxdTest::ca_ = nullptr;
ChildProcess* TokenVoxdTest::voxd_ = nullptr;
std::string* TokenVoxdTest::address_ = nullptr;

TEST_F(TokenVoxdTest, ServesAValidTokenAndLogsItsNameNeverTheToken) {
  auto channel = TlsChannel(*address_, *ca_);
  const grpc::Status models = ListModels(channel, "secret-full");
  ASSERT_TRUE(models.ok()) << models.error_message();

  auto stub = v1::TranslationService::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context);
  context.AddMetadata("authorization", "Bearer secret-translator");
  context.AddMetadata("vox-token-name", "forged");  // voxd's own key: dropped, never believed
  v1::TranslateRequest request;
  request.set_source_language("eng_Latn");
  request.set_target_language("fra_Latn");
  request.add_texts("Hello.");
  v1::TranslateResponse response;
  const grpc::Status translated = stub->Translate(&context, request, &response);
  ASSERT_TRUE(translated.ok()) << translated.error_message();
  EXPECT_EQ(response.translations_size(), 1);

  const std::string log = voxd_->Stderr();
  EXPECT_THAT(log, HasSubstr("rpc=/vox.v1.DiscoveryService/ListModels status=OK"));
  EXPECT_THAT(log, HasSubstr("token=full"));
  EXPECT_THAT(log, HasSubstr("token=translator"));
  EXPECT_THAT(log, Not(HasSubstr("secret-")));
  EXPECT_THAT(log, Not(HasSubstr("forged")));
  const std::string scrape = testing::HttpGet(testing::MetricsPort(*voxd_), "/metrics");
  EXPECT_THAT(scrape, HasSubstr("vox_token_requests_total{token=\"translator\"}"));
}

TEST_F(TokenVoxdTest, PlaintextClientsAreNotServed) {
  const grpc::Status s =
      ListModels(grpc::CreateChannel(*address_, grpc::InsecureChannelCredentials()), "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(TokenVoxdTest, HealthIsOpenReflectionNeedsAToken) {
  auto channel = TlsChannel(*address_, *ca_);
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status s = health->Check(&context, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// Every method, with a missing, a wrong, an expired and another service's token: nothing is
// served (no response message, no OK), each refused with its code.
TEST_F(TokenVoxdTest, ProbeOfTenThousandCallsServesNone) {
  auto channel = TlsChannel(*address_, *ca_);
  auto translation = v1::TranslationService::NewStub(channel);
  auto discovery = v1::DiscoveryService::NewStub(channel);
  auto speech = v1::SpeechService::NewStub(channel);
  auto speech_translation = v1::SpeechTranslationService::NewStub(channel);
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(channel);

  enum Kind { kMissing, kWrong, kExpired, kOtherService, kKinds };
  // The token of another service: for speech methods the translation-only token, else the
  // speech-only one.
  auto token_for = [](Kind kind, bool speech_method) -> std::string {
    switch (kind) {
      case kMissing: return "";
      case kWrong: return "secret-wrong";
      case kExpired: return "secret-expired";
      default: return speech_method ? "secret-translator" : "secret-speaker";
    }
  };
  auto expected = [](Kind kind) {
    return kind == kOtherService ? grpc::StatusCode::PERMISSION_DENIED
                                 : grpc::StatusCode::UNAUTHENTICATED;
  };
  constexpr int kMethods = 8;
  int served = 0, wrong_code = 0;
  std::map<std::string, int> codes;
  const int kCalls = 10000;
  for (int i = 0; i < kCalls; ++i) {
    const int method = i % kMethods;
    const Kind kind = static_cast<Kind>((i / kMethods) % kKinds);
    const bool speech_method = method >= 4 && method <= 5;
    grpc::ClientContext context;
    SetDeadline(&context);
    const std::string token = token_for(kind, speech_method);
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    grpc::Status status;
    bool got_message = false;
    switch (method) {
      case 0: {
        v1::TranslateRequest request;
        request.set_source_language("eng_Latn");
        request.set_target_language("fra_Latn");
        request.add_texts("Hello.");
        v1::TranslateResponse response;
        status = translation->Translate(&context, request, &response);
        break;
      }
      case 1: {
        v1::ListLanguagesResponse response;
        status = discovery->ListLanguages(&context, v1::ListLanguagesRequest(), &response);
        break;
      }
      case 2: {
        v1::ListVoicesResponse response;
        status = discovery->ListVoices(&context, v1::ListVoicesRequest(), &response);
        break;
      }
      case 3: {
        v1::ListModelsResponse response;
        status = discovery->ListModels(&context, v1::ListModelsRequest(), &response);
        break;
      }
      case 4: {
        v1::SynthesizeRequest request;
        request.set_text("Hello.");
        request.set_language("eng_Latn");
        auto reader = speech->Synthesize(&context, request);
        v1::SynthesizeResponse response;
        while (reader->Read(&response)) got_message = true;
        status = reader->Finish();
        break;
      }
      case 5: {
        auto stream = speech->SynthesizeStream(&context);
        v1::SynthesizeStreamRequest request;
        request.mutable_config()->set_text("Hello.");
        request.mutable_config()->set_language("eng_Latn");
        stream->Write(request);
        stream->WritesDone();
        v1::SynthesizeResponse response;
        while (stream->Read(&response)) got_message = true;
        status = stream->Finish();
        break;
      }
      case 6: {
        auto stream = speech_translation->SpeechTranslate(&context);
        v1::SpeechTranslateRequest request;
        request.mutable_config()->set_source_language("eng_Latn");
        request.mutable_config()->set_target_language("fra_Latn");
        stream->Write(request);
        stream->WritesDone();
        v1::SpeechTranslateResponse response;
        while (stream->Read(&response)) got_message = true;
        status = stream->Finish();
        break;
      }
      default: {
        auto stream = reflection->ServerReflectionInfo(&context);
        grpc::reflection::v1alpha::ServerReflectionRequest request;
        request.set_list_services("");
        stream->Write(request);
        stream->WritesDone();
        grpc::reflection::v1alpha::ServerReflectionResponse response;
        while (stream->Read(&response)) got_message = true;
        status = stream->Finish();
        break;
      }
    }
    // Reflection is not a vox.v1 service, but a token limited to some services may not list
    // the API either: PERMISSION_DENIED like the rest.
    const grpc::StatusCode want = expected(kind);
    if (status.ok() || got_message) ++served;
    if (status.error_code() != want) {
      ++wrong_code;
      ++codes[absl::StrCat(method, "/", kind, ": ", status.error_code(), " ",
                           status.error_message())];
    }
  }
  EXPECT_EQ(served, 0);
  EXPECT_EQ(wrong_code, 0);
  for (const auto& [what, n] : codes) ADD_FAILURE() << n << " x " << what;
}

// Polls until ListModels with `token` gets `code` (a call's place is given back when the call
// has ended on the server, a moment after the client saw its status). `misses`, if given,
// counts the calls that got another code before it.
bool ListModelsGets(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                    grpc::StatusCode code, int* misses = nullptr) {
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (absl::Now() < end) {
    if (ListModels(channel, token).error_code() == code) return true;
    if (misses != nullptr) ++*misses;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

TEST_F(TokenVoxdTest, ATokensConcurrentStreamsAreLimited) {
  auto channel = TlsChannel(*address_, *ca_);
  auto speech = v1::SpeechService::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(60));
  context.AddMetadata("authorization", "Bearer secret-single");
  auto stream = speech->SynthesizeStream(&context);
  v1::SynthesizeStreamRequest config;
  config.mutable_config()->set_language("eng_Latn");
  ASSERT_TRUE(stream->Write(config));
  v1::SynthesizeResponse response;
  ASSERT_TRUE(stream->Read(&response));  // the header: the stream holds the token's one place

  const grpc::Status refused = ListModels(channel, "secret-single");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("token 'single' has 1 calls open"));
  EXPECT_TRUE(ListModels(channel, "secret-full").ok());  // other tokens are not affected

  v1::SynthesizeStreamRequest text;
  text.set_text("Hello.");
  ASSERT_TRUE(stream->Write(text));
  ASSERT_TRUE(stream->WritesDone());
  while (stream->Read(&response)) {
  }
  ASSERT_TRUE(stream->Finish().ok());
  // A poll that comes before the stream's place is given back is refused, and counted, too.
  int refused_polls = 0;
  EXPECT_TRUE(ListModelsGets(channel, "secret-single", grpc::StatusCode::OK, &refused_polls));
  const std::string scrape = testing::HttpGet(testing::MetricsPort(*voxd_), "/metrics");
  EXPECT_THAT(scrape,
              HasSubstr(absl::StrCat("vox_quota_rejections_total{quota=\"concurrent_streams\","
                                     "token=\"single\"} ", 1 + refused_polls, "\n")));
}

TEST_F(TokenVoxdTest, VoxctlSpeaksTlsWithATokenFile) {
  const std::string token_file = *dir_ + "/voxctl-token";
  std::ofstream(token_file) << "secret-full\n";
  ChildProcess with;
  with.SetEnv("VOX_TOKEN", nullptr);
  ASSERT_TRUE(with.Start({VOXCTL_BINARY, "--server", *address_, "--tls-ca", ca_->cert,
                          "--token-file", token_file, "models"},
                         testing::StderrPath(Unique("voxctl-tls")))
                  .ok());
  absl::StatusOr<int> code = with.Wait(0, absl::Seconds(60));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << with.Stderr();
  EXPECT_THAT(with.RestOfStdout(), HasSubstr("nllb-tiny"));

  ChildProcess without;
  without.SetEnv("VOX_TOKEN", nullptr);
  ASSERT_TRUE(without.Start({VOXCTL_BINARY, "--server", *address_, "--tls-ca", ca_->cert, "models"},
                            testing::StderrPath(Unique("voxctl-notoken")))
                  .ok());
  code = without.Wait(0, absl::Seconds(60));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(without.Stderr(), HasSubstr("UNAUTHENTICATED"));
}

TEST(VoxdTlsTest, MutualTlsAdmitsOnlyClientsTheCaSigned) {
  const std::string dir = Dir("mtls");
  const CertFiles ca = testing::MakeCa(dir, "ca");
  const CertFiles other_ca = testing::MakeCa(dir, "other-ca");
  const CertFiles server = testing::MakeLeaf(dir, "server", ca);
  const CertFiles client = testing::MakeLeaf(dir, "client", ca);
  const CertFiles stranger = testing::MakeLeaf(dir, "stranger", other_ca);
  ChildProcess voxd;
  const std::string address = testing::StartVoxd(
      &voxd, VOXD_BINARY,
      {"--models", testing::ModelsDir(Unique("mtls"), {kTinyModel}), "--threads", "1",
       "--builtin", "off", "--tls-cert", server.cert, "--tls-key", server.key, "--tls-client-ca",
       ca.cert},
      Unique("mtls"));
  ASSERT_FALSE(address.empty());
  EXPECT_TRUE(ListModels(TlsChannel(address, ca, &client), "").ok());
  EXPECT_FALSE(ListModels(TlsChannel(address, ca), "").ok());
  EXPECT_FALSE(ListModels(TlsChannel(address, ca, &stranger), "").ok());
}

// Polls until a fresh connection trusting `ca` is served (SIGHUP reloads take up to a second).
bool ServedWithin(const std::string& address, const CertFiles& ca, absl::Duration limit) {
  const absl::Time end = absl::Now() + limit;
  while (absl::Now() < end) {
    if (ListModels(TlsChannel(address, ca), "secret").ok()) return true;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return false;
}

TEST(VoxdTlsTest, SighupReloadsCertificatesAndTokensWithoutDroppingOpenStreams) {
  const std::string dir = Dir("reload");
  const CertFiles ca1 = testing::MakeCa(dir, "ca1");
  const CertFiles ca2 = testing::MakeCa(dir, "ca2");
  const CertFiles leaf1 = testing::MakeLeaf(dir, "leaf1", ca1);
  const CertFiles leaf2 = testing::MakeLeaf(dir, "leaf2", ca2);
  const std::string cert = dir + "/server.pem", key = dir + "/server.key";
  const auto overwrite = fs::copy_options::overwrite_existing;
  fs::copy_file(leaf1.cert, cert, overwrite);
  fs::copy_file(leaf1.key, key, overwrite);
  const std::string tokens = TokenFile(dir, Token("first", "secret", "services = [\"*\"]"));
  ChildProcess voxd;
  const std::string address = testing::StartVoxd(
      &voxd, VOXD_BINARY,
      {"--models", testing::ModelsDir(Unique("reload"), {kTinyModel}), "--threads", "1",
       "--tls-cert", cert, "--tls-key", key, "--token-file", tokens, "--metrics-listen",
       "127.0.0.1:0"},
      Unique("reload"));
  ASSERT_FALSE(address.empty());
  ASSERT_TRUE(ServedWithin(address, ca1, absl::Seconds(5)));

  // A live-text stream opened before the reload.
  auto old_channel = TlsChannel(address, ca1);
  auto speech = v1::SpeechService::NewStub(old_channel);
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(60));
  context.AddMetadata("authorization", "Bearer secret");
  auto stream = speech->SynthesizeStream(&context);
  v1::SynthesizeStreamRequest config;
  config.mutable_config()->set_language("eng_Latn");
  config.mutable_config()->set_text("Hello there. ");
  ASSERT_TRUE(stream->Write(config));
  v1::SynthesizeResponse response;
  ASSERT_TRUE(stream->Read(&response));  // the header: the stream is open and served

  // New certificate (another CA) and a new token file, then SIGHUP.
  fs::copy_file(leaf2.cert, cert, overwrite);
  fs::copy_file(leaf2.key, key, overwrite);
  std::ofstream(tokens) << Token("first", "secret", "services = [\"*\"]")
                        << Token("second", "secret-2", "services = [\"*\"]");
  ASSERT_EQ(::kill(voxd.pid(), SIGHUP), 0);
  EXPECT_TRUE(ServedWithin(address, ca2, absl::Seconds(15))) << voxd.Stderr();
  EXPECT_FALSE(ListModels(TlsChannel(address, ca1), "secret").ok());
  EXPECT_TRUE(ListModels(TlsChannel(address, ca2), "secret-2").ok());

  // The stream opened before goes on and ends normally.
  v1::SynthesizeStreamRequest more;
  more.set_text("How are you today?");
  ASSERT_TRUE(stream->Write(more));
  ASSERT_TRUE(stream->WritesDone());
  int audio = 0;
  while (stream->Read(&response)) audio += response.has_audio() ? 1 : 0;
  const grpc::Status finished = stream->Finish();
  EXPECT_TRUE(finished.ok()) << finished.error_message();
  EXPECT_GT(audio, 0);

  // A bad certificate: the reload fails, is logged and counted, and the last good one serves.
  std::ofstream(cert) << "not a certificate";
  ASSERT_EQ(::kill(voxd.pid(), SIGHUP), 0);
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (absl::Now() < end && voxd.Stderr().find("not a PEM certificate") == std::string::npos) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_THAT(voxd.Stderr(), HasSubstr("kept the files loaded before"));
  absl::SleepFor(absl::Seconds(2));  // longer than the watcher's refresh
  EXPECT_TRUE(ListModels(TlsChannel(address, ca2), "secret").ok());
  const std::string scrape = testing::HttpGet(testing::MetricsPort(voxd), "/metrics");
  EXPECT_THAT(scrape, HasSubstr("vox_config_reloads_total{result=\"error\",what=\"tls\"} 1"));
  EXPECT_THAT(scrape, HasSubstr("vox_config_reloads_total{result=\"ok\",what=\"tls\"} 1"));
  EXPECT_THAT(scrape, HasSubstr("vox_config_reloads_total{result=\"ok\",what=\"tokens\"} 2"));
}

TEST(VoxdTlsTest, TokensWithoutTlsAreRefusedAtStartUp) {
  const std::string dir = Dir("notls");
  const std::string tokens = TokenFile(dir, Token("a", "b", "services = [\"*\"]"));
  ChildProcess voxd;
  ASSERT_TRUE(voxd.Start({VOXD_BINARY, "--listen", "127.0.0.1:0", "--builtin", "auto",
                          "--token-file", tokens},
                         testing::StderrPath(Unique("notls")))
                  .ok());
  absl::StatusOr<int> code = voxd.Wait(0, absl::Seconds(60));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2);
  EXPECT_THAT(voxd.Stderr(), HasSubstr("needs TLS"));
}

// Connection limits: a message over server.max_message_bytes is refused, and a client that pings
// an idle connection more often than the server allows is disconnected.
TEST(VoxdLimitsTest, MessageSizeAndKeepaliveAreEnforced) {
  const std::string dir = Dir("limits");
  const std::string config = dir + "/voxd.toml";
  std::ofstream(config) << "[server]\nmax_message_bytes = 4096\n"
                           "keepalive_min_ping_interval_seconds = 30\n"
                           "max_concurrent_streams = 1\n";
  ChildProcess voxd;
  const std::string address = testing::StartVoxd(
      &voxd, VOXD_BINARY,
      {"--config", config, "--models", testing::ModelsDir(Unique("limits"), {kTinyModel}),
       "--threads", "1"},
      Unique("limits"));
  ASSERT_FALSE(address.empty());

  auto translation = v1::TranslationService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext big_context;
  SetDeadline(&big_context);
  v1::TranslateRequest big;
  big.set_source_language("eng_Latn");
  big.set_target_language("fra_Latn");
  big.add_texts(std::string(8000, 'a'));
  v1::TranslateResponse response;
  const grpc::Status too_big = translation->Translate(&big_context, big, &response);
  EXPECT_EQ(too_big.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << too_big.error_message();

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  auto speech = v1::SpeechService::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(60));
  auto stream = speech->SynthesizeStream(&context);  // open, idle: only pings flow
  v1::SynthesizeStreamRequest config_message;
  config_message.mutable_config()->set_language("eng_Latn");
  ASSERT_TRUE(stream->Write(config_message));
  v1::SynthesizeResponse message;
  ASSERT_TRUE(stream->Read(&message));  // the header: the stream is open

  // It is the one call the server allows open at once.
  auto plain = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  const grpc::Status full = ListModels(plain, "");
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << full.error_message();
  EXPECT_THAT(full.error_message(), HasSubstr("server.max_concurrent_streams"));

  while (stream->Read(&message)) {
  }
  const grpc::Status closed = stream->Finish();
  EXPECT_EQ(closed.error_code(), grpc::StatusCode::UNAVAILABLE) << closed.error_message();
  // The dropped connection's call ended: its place is free again.
  EXPECT_TRUE(ListModelsGets(plain, "", grpc::StatusCode::OK));
}

}  // namespace
}  // namespace vox
