// The token file, the token check gRPC runs before every call, and the TLS file checks.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/call_quotas.h"
#include "server/auth/daily_characters.h"
#include "server/auth/server_tls.h"
#include "server/auth/token_authenticator.h"
#include "server/auth/token_file.h"
#include "server/metrics/metrics.h"
#include "tests/auth/test_certs.h"

namespace vox {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kServices = {"vox.v1.TranslationService", "vox.v1.SpeechService"};

std::string TokenEntry(const std::string& name, const std::string& token,
                       const std::string& extra = "services = [\"*\"]") {
  return absl::StrCat("[[token]]\nname = \"", name, "\"\nsha256 = \"", Sha256Hex(token), "\"\n",
                      extra, "\n");
}

TEST(TokenFileTest, ParsesEveryField) {
  const std::string text = TokenEntry(
      "app", "secret-1",
      "services = [\"vox.v1.TranslationService\"]\nexpires = \"2030-01-02T03:04:05Z\"\n"
      "requests_per_second = 2.5\nconcurrent_streams = 3\ncharacters_per_day = 50000");
  absl::StatusOr<std::vector<TokenPolicy>> tokens = ParseTokenFile(text, "t.toml", kServices);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 1u);
  const TokenPolicy& p = (*tokens)[0];
  EXPECT_EQ(p.name, "app");
  EXPECT_EQ(p.sha256, Sha256Of("secret-1"));
  EXPECT_TRUE(p.Allows("vox.v1.TranslationService"));
  EXPECT_FALSE(p.Allows("vox.v1.SpeechService"));
  EXPECT_EQ(p.expires, absl::FromUnixSeconds(1893553445));
  EXPECT_DOUBLE_EQ(p.requests_per_second, 2.5);
  EXPECT_EQ(p.concurrent_streams, 3);
  EXPECT_EQ(p.characters_per_day, 50000);
}

TEST(TokenFileTest, RefusesMalformedEntriesNamingThem) {
  struct Case {
    std::string text, message;
  };
  const std::vector<Case> cases = {
      {"[[token]]\nsha256 = \"" + Sha256Hex("x") + "\"\nservices = [\"*\"]\n", "'name'"},
      {"[[token]]\nname = \"a\"\nsha256 = \"abc\"\nservices = [\"*\"]\n", "64 hex digits"},
      {TokenEntry("a", "x", "services = [\"vox.v1.Nope\"]"), "unknown service 'vox.v1.Nope'"},
      {TokenEntry("a", "x", "services = []"), "'services'"},
      {TokenEntry("a", "x") + TokenEntry("a", "y"), "name 'a' is used twice"},
      {TokenEntry("a", "x", "services = [\"*\"]\ncharacters_per_day = -1"),
       "'characters_per_day' must be an integer >= 0"},
      {TokenEntry("a", "x", "services = [\"*\"]\ncharacters_per_day = \"lots\""),
       "'characters_per_day' must be an integer >= 0"},
      {TokenEntry("a", "x") + TokenEntry("b", "x"), "same sha256"},
      {TokenEntry("a", "x", "services = [\"*\"]\nexpires = \"tomorrow\""), "RFC 3339"},
      {TokenEntry("a", "x", "services = [\"*\"]\ntoken = \"plain\""), "unknown key 'token'"},
      {TokenEntry("a", "x", "services = [\"*\"]\ncharacters_per_month = 2"),
       "unknown key 'characters_per_month'"},
      {TokenEntry("a", "x", "services = [\"*\"]\nconcurrent_streams = -1"),
       "'concurrent_streams' must be"},
      {"[server]\nx = 1\n", "unknown key 'server'"},
      {"[[token]\n", "t.toml:1"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<TokenPolicy>> tokens = ParseTokenFile(c.text, "t.toml", kServices);
    ASSERT_FALSE(tokens.ok()) << c.text;
    EXPECT_EQ(tokens.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(tokens.status().message()), HasSubstr(c.message)) << c.text;
  }
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create("");
    ASSERT_TRUE(m.ok());
    metrics_ = std::move(*m);
    const std::string text =
        TokenEntry("all", "tok-all") +
        TokenEntry("translate-only", "tok-tr", "services = [\"vox.v1.TranslationService\"]") +
        TokenEntry("old", "tok-old", "services = [\"*\"]\nexpires = \"2020-01-01T00:00:00Z\"") +
        TokenEntry("slow", "tok-slow", "services = [\"*\"]\nrequests_per_second = 2");
    absl::StatusOr<std::vector<TokenPolicy>> tokens = ParseTokenFile(text, "t", kServices);
    ASSERT_TRUE(tokens.ok()) << tokens.status();
    auth_ = std::make_unique<TokenAuthenticator>(std::move(*tokens), OpenServices{},
                                                 metrics_.get());
  }

  absl::StatusCode Code(const std::string& path, const std::string& authorization) {
    return auth_->Admit(path, authorization, now_).status().code();
  }

  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<TokenAuthenticator> auth_;
  absl::Time now_ = absl::FromUnixSeconds(1800000000);
};

constexpr char kTranslate[] = "/vox.v1.TranslationService/Translate";
constexpr char kSynthesize[] = "/vox.v1.SpeechService/Synthesize";

TEST_F(AuthenticatorTest, AdmitsAValidTokenByName) {
  absl::StatusOr<std::string> name = auth_->Admit(kTranslate, "Bearer tok-all", now_);
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(*name, "all");
  EXPECT_EQ(*auth_->Admit(kSynthesize, "bearer tok-all", now_), "all");  // scheme is caseless
  EXPECT_THAT(metrics_->Scrape(), HasSubstr("vox_token_requests_total{token=\"all\"} 2"));
}

TEST_F(AuthenticatorTest, RefusesWithTheRightCode) {
  EXPECT_EQ(Code(kTranslate, ""), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Code(kTranslate, "Bearer "), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Code(kTranslate, "Bearer tok-wrong"), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Code(kTranslate, "tok-all"), absl::StatusCode::kUnauthenticated);  // no scheme
  EXPECT_EQ(Code(kTranslate, "Basic tok-all"), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Code(kTranslate, "Bearer tok-old"), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Code(kSynthesize, "Bearer tok-tr"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code("/vox.v1.SpeechService", "Bearer tok-tr"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Code("", "Bearer tok-tr"), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(auth_->Admit(kTranslate, "Bearer tok-tr", now_).ok());
  const std::string scrape = metrics_->Scrape();
  EXPECT_THAT(scrape, HasSubstr("vox_auth_rejections_total{reason=\"missing_token\"} 1"));
  EXPECT_THAT(scrape, HasSubstr("vox_auth_rejections_total{reason=\"invalid_token\"} 4"));
  EXPECT_THAT(scrape, HasSubstr("vox_auth_rejections_total{reason=\"expired_token\"} 1"));
  EXPECT_THAT(scrape, HasSubstr("vox_auth_rejections_total{reason=\"service_not_allowed\"} 3"));
}

TEST_F(AuthenticatorTest, MessagesNameTheTokenNeverItsSecret) {
  const absl::Status expired = auth_->Admit(kTranslate, "Bearer tok-old", now_).status();
  EXPECT_THAT(std::string(expired.message()), HasSubstr("'old' expired at 2020-01-01"));
  const absl::Status denied = auth_->Admit(kSynthesize, "Bearer tok-tr", now_).status();
  EXPECT_THAT(std::string(denied.message()),
              HasSubstr("'translate-only' may not call vox.v1.SpeechService"));
  for (const absl::Status& s : {expired, denied}) {
    EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr("tok-")));
  }
}

TEST_F(AuthenticatorTest, HealthIsOpenAndReflectionClosedByDefault) {
  EXPECT_EQ(*auth_->Admit("/grpc.health.v1.Health/Check", "", now_), "");
  EXPECT_EQ(Code("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", ""),
            absl::StatusCode::kUnauthenticated);
  TokenAuthenticator closed({}, OpenServices{false, true}, nullptr);
  EXPECT_EQ(closed.Admit("/grpc.health.v1.Health/Check", "", now_).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(closed.Admit("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "",
                           now_).ok());
}

TEST_F(AuthenticatorTest, RequestRateIsABucketOfOneSecond) {
  // 2 per second: a burst of 2, then one more every half second.
  EXPECT_TRUE(auth_->Admit(kTranslate, "Bearer tok-slow", now_).ok());
  EXPECT_TRUE(auth_->Admit(kTranslate, "Bearer tok-slow", now_).ok());
  EXPECT_EQ(Code(kTranslate, "Bearer tok-slow"), absl::StatusCode::kResourceExhausted);
  now_ += absl::Milliseconds(499);
  EXPECT_EQ(Code(kTranslate, "Bearer tok-slow"), absl::StatusCode::kResourceExhausted);
  now_ += absl::Milliseconds(2);
  EXPECT_TRUE(auth_->Admit(kTranslate, "Bearer tok-slow", now_).ok());
  EXPECT_EQ(Code(kTranslate, "Bearer tok-slow"), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(auth_->Admit(kTranslate, "Bearer tok-all", now_).ok());  // others unaffected
  EXPECT_THAT(metrics_->Scrape(),
              HasSubstr("vox_quota_rejections_total{quota=\"requests_per_second\","
                        "token=\"slow\"} 3"));
}

TEST_F(AuthenticatorTest, ReplaceSwapsTheTokens) {
  absl::StatusOr<std::vector<TokenPolicy>> tokens =
      ParseTokenFile(TokenEntry("new", "tok-new"), "t", kServices);
  ASSERT_TRUE(tokens.ok());
  auth_->Replace(std::move(*tokens));
  EXPECT_EQ(*auth_->Admit(kTranslate, "Bearer tok-new", now_), "new");
  EXPECT_EQ(Code(kTranslate, "Bearer tok-all"), absl::StatusCode::kUnauthenticated);
}

TEST(CallQuotasTest, CountsOpenCallsPerTokenAndInAll) {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Create("");
  ASSERT_TRUE(metrics.ok());
  CallQuotas quotas(3, metrics->get());
  quotas.SetTokenLimits({{"one", 1}, {"free", 0}});
  absl::StatusOr<CallQuotas::Slot> a = quotas.Enter("one");
  ASSERT_TRUE(a.ok());
  const absl::Status second = quotas.Enter("one").status();
  EXPECT_EQ(second.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(second.message()), HasSubstr("token 'one' has 1 calls open"));
  absl::StatusOr<CallQuotas::Slot> b = quotas.Enter("free");
  absl::StatusOr<CallQuotas::Slot> c = quotas.Enter("");
  ASSERT_TRUE(b.ok() && c.ok());
  EXPECT_EQ(quotas.open_calls(), 3);
  const absl::Status full = quotas.Enter("free").status();  // 3 open: the server's limit
  EXPECT_THAT(std::string(full.message()), HasSubstr("server.max_concurrent_streams"));
  {
    CallQuotas::Slot moved = std::move(*a);  // the slot moves; released once, when `moved` goes
    EXPECT_EQ(quotas.open_calls("one"), 1);
  }
  EXPECT_EQ(quotas.open_calls("one"), 0);
  EXPECT_EQ(quotas.open_calls(), 2);
  EXPECT_TRUE(quotas.Enter("one").ok());  // and released again at once
  quotas.SetTokenLimits({});               // SIGHUP removed the limit: open calls stay counted
  EXPECT_EQ(quotas.open_calls(), 2);
  const std::string scrape = (*metrics)->Scrape();
  EXPECT_THAT(scrape, HasSubstr("quota=\"concurrent_streams\",token=\"one\"} 1"));
  EXPECT_THAT(scrape, HasSubstr("quota=\"max_concurrent_streams\",token=\"free\"} 1"));
}

TEST(DailyCharactersTest, CountsPerTokenPerUtcDayAndRefusesWhatDoesNotFit) {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Create("");
  ASSERT_TRUE(metrics.ok());
  absl::Time now = absl::FromUnixSeconds(1796428800 - 10);  // 2026-12-04 23:59:50 UTC
  DailyCharacters characters(metrics->get(), [&now] { return now; });
  characters.SetLimits({{"app", 100}, {"free", 0}});
  EXPECT_TRUE(characters.Charge("app", 60).ok());
  const absl::Status over = characters.Charge("app", 41);  // 101 > 100: refused, not counted
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(over.message()),
              HasSubstr("token 'app' has sent 60 of its 100 characters for 2026-12-04"));
  EXPECT_EQ(characters.used("app"), 60);
  EXPECT_TRUE(characters.Charge("app", 40).ok());  // exactly the limit fits
  EXPECT_FALSE(characters.Charge("app", 1).ok());
  EXPECT_TRUE(characters.Charge("free", 1000000).ok());  // 0 = no limit, still counted
  EXPECT_TRUE(characters.Charge("", 1000000).ok());      // no token: nothing to count
  characters.SetLimits({{"app", 150}});  // SIGHUP: today's count stays
  EXPECT_EQ(characters.used("app"), 100);
  EXPECT_TRUE(characters.Charge("app", 50).ok());
  EXPECT_FALSE(characters.Charge("app", 1).ok());
  now += absl::Seconds(10);  // 00:00 UTC: a new day
  EXPECT_EQ(characters.used("app"), 0);
  EXPECT_TRUE(characters.Charge("app", 150).ok());
  const std::string scrape = (*metrics)->Scrape();
  EXPECT_THAT(scrape, HasSubstr("vox_quota_rejections_total{quota=\"characters_per_day\","
                                "token=\"app\"} 3"));
  EXPECT_THAT(scrape, HasSubstr("vox_token_characters_total{token=\"app\"} 300"));
  EXPECT_THAT(scrape, HasSubstr("vox_token_characters_total{token=\"free\"} 1000000"));
}

TEST(TlsFilesTest, ChecksThatKeyAndCertificateBelongTogether) {
  const std::string dir = ::testing::TempDir() + "/tls-files-" + std::to_string(::getpid());
  const testing::CertFiles ca = testing::MakeCa(dir, "ca");
  const testing::CertFiles a = testing::MakeLeaf(dir, "a", ca);
  const testing::CertFiles b = testing::MakeLeaf(dir, "b", ca);
  EXPECT_TRUE(CheckTlsFiles({a.cert, a.key, ca.cert}).ok());
  const absl::Status mismatch = CheckTlsFiles({a.cert, b.key, ""});
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mismatch.message()), HasSubstr("does not match"));
  const absl::Status missing = CheckTlsFiles({dir + "/nope.pem", a.key, ""});
  EXPECT_THAT(std::string(missing.message()), HasSubstr("nope.pem"));
  const absl::Status not_ca = CheckTlsFiles({a.cert, a.key, a.key});
  EXPECT_THAT(std::string(not_ca.message()), HasSubstr("client CA"));
  const absl::Status key_as_cert = CheckTlsFiles({a.key, a.key, ""});
  EXPECT_THAT(std::string(key_as_cert.message()), HasSubstr("not a PEM certificate"));
}

TEST(TlsFilesTest, ReloadKeepsTheServingCopyWhenTheNewFilesAreBad) {
  const std::string dir = ::testing::TempDir() + "/tls-reload-" + std::to_string(::getpid());
  const testing::CertFiles ca = testing::MakeCa(dir, "ca");
  const testing::CertFiles a = testing::MakeLeaf(dir, "a", ca);
  const std::string cert = dir + "/server.pem", key = dir + "/server.key";
  std::filesystem::copy_file(a.cert, cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(a.key, key, std::filesystem::copy_options::overwrite_existing);
  absl::StatusOr<std::unique_ptr<ServerTls>> tls = ServerTls::Create({cert, key, ""});
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ((*tls)->generation(), 1);
  std::ofstream(cert) << "garbage";
  EXPECT_FALSE((*tls)->Reload().ok());
  EXPECT_EQ((*tls)->generation(), 1);
  std::filesystem::copy_file(a.cert, cert, std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE((*tls)->Reload().ok());
  EXPECT_EQ((*tls)->generation(), 2);
}

}  // namespace
}  // namespace vox
