// The vox.v1 services in process, over real gRPC on loopback, with fake engines.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "engines/audio/audio_stream_encoder.h"
#include "engines/core/clock.h"
#include "server/config.h"
#include "server/model_registry.h"
#include "server/translate_plan.h"
#include "server/translation_service.h"
#include "server/vox_server.h"
#include "tests/server/fake_engines.h"
#include "server/speech_service.h"
#include "vox/v1/discovery.grpc.pb.h"
#include "vox/v1/speech.grpc.pb.h"
#include "vox/v1/translation.grpc.pb.h"

namespace vox {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::FakeSpeechEngine;
using testing::FakeTranslationEngine;

// How a test's server is built (the defaults are what most tests use).
struct ServerSetup {
  int queue_size = 4;              // max_queue_size of the primary translation model
  int max_batch_size = 8;
  int64_t max_queue_delay_us = 0;
  bool translation_stepper = false;  // the primary engine decodes step by step
  bool speech_stepper = false;
  int max_paused_slots = 2;
  absl::Duration max_pause = absl::Seconds(30);
  size_t stream_buffer_bytes = 4 << 20;
  Clock* clock = Clock::Real();  // the schedulers' clock
};

class ServicesTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(ServerSetup{}); }

  void StartServer(int queue_size) {
    ServerSetup setup;
    setup.queue_size = queue_size;
    StartServer(setup);
  }

  void StartServer(const ServerSetup& setup) {
    auto registry = std::make_unique<ModelRegistry>();
    auto voice = std::make_unique<FakeSpeechEngine>(
        "fake-voice",
        std::vector<VoiceInfo>{{"Ana", {"eng_Latn", "spa_Latn"}}, {"Bo", {"cat_Latn"}}});
    voice->Refuse("jpn_Jpan", "needs a romaniser vox lacks");
    voice_ = voice.get();
    if (setup.speech_stepper) voice->EnableStepper();
    auto primary = std::make_unique<FakeTranslationEngine>(
        "fake-a", std::vector<std::string>{"eng_Latn", "fra_Latn", "spa_Latn"},
        std::vector<std::pair<std::string, std::string>>{
            {"eng_Latn", "fra_Latn"}, {"eng_Latn", "spa_Latn"}, {"fra_Latn", "eng_Latn"}});
    if (setup.translation_stepper) primary->EnableStepper();
    auto fallback = std::make_unique<FakeTranslationEngine>(
        "fake-fallback", std::vector<std::string>{"eng_Latn", "spa_Latn", "cat_Latn"},
        std::vector<std::pair<std::string, std::string>>{{"eng_Latn", "spa_Latn"},
                                                         {"spa_Latn", "cat_Latn"}},
        /*fallback=*/true);
    primary_ = primary.get();
    fallback_ = fallback.get();
    SchedulerOptions options;
    options.max_queue_size = setup.queue_size;
    options.max_batch_size = setup.max_batch_size;
    options.max_queue_delay_us = setup.max_queue_delay_us;
    options.max_paused_slots = setup.max_paused_slots;
    options.max_pause = setup.max_pause;
    ASSERT_TRUE(registry->AddTranslation(std::move(primary), options, setup.clock).ok());
    SchedulerOptions small;
    small.max_queue_size = 4;
    ASSERT_TRUE(registry->AddTranslation(std::move(fallback), small, setup.clock).ok());
    SchedulerOptions speech = options;
    speech.max_queue_size = 4;
    speech.max_queue_delay_us = 0;
    ASSERT_TRUE(registry->AddSpeech(std::move(voice), speech, setup.clock).ok());
    ASSERT_TRUE(registry->WarmUp().ok());
    warm_up_calls_ = primary_->calls();
    ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.max_texts_per_call = 3;
    config.max_text_chars = 60;
    config.access_log = false;
    config.stream_buffer_bytes = setup.stream_buffer_bytes;
    server_ = std::make_unique<VoxServer>(config, std::move(registry));
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::TranslationService::NewStub(channel_);
    discovery_ = v1::DiscoveryService::NewStub(channel_);
    speech_ = v1::SpeechService::NewStub(channel_);
  }

  const TranslationModel& PrimaryModel() const {
    return *server_->registry().translation()[0];
  }

  void TearDown() override {
    if (primary_ != nullptr) primary_->Release();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
  }

  static v1::TranslateRequest Request(std::vector<std::string> texts,
                                      std::string from = "eng_Latn",
                                      std::string to = "fra_Latn") {
    v1::TranslateRequest r;
    for (auto& t : texts) r.add_texts(t);
    r.set_source_language(from);
    r.set_target_language(to);
    return r;
  }

  grpc::Status Call(const v1::TranslateRequest& request, v1::TranslateResponse* response,
                    grpc::ClientContext* context = nullptr) {
    grpc::ClientContext local;
    if (context == nullptr) {
      context = &local;
      context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    }
    return stub_->Translate(context, request, response);
  }

  // A clock for the schedulers that outlives the server (declared before it).
  FakeClock& NewFakeClock() {
    fake_clock_ = std::make_unique<FakeClock>();
    return *fake_clock_;
  }
  std::unique_ptr<FakeClock> fake_clock_;
  FakeTranslationEngine* primary_ = nullptr;
  int warm_up_calls_ = 0;  // Translate calls the warm-up made on the primary engine
  FakeTranslationEngine* fallback_ = nullptr;
  FakeSpeechEngine* voice_ = nullptr;
  std::unique_ptr<VoxServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TranslationService::Stub> stub_;
  std::unique_ptr<v1::DiscoveryService::Stub> discovery_;
  std::unique_ptr<v1::SpeechService::Stub> speech_;
};

TEST_F(ServicesTest, TranslatesEveryTextInOrderWithTheChosenModel) {
  v1::TranslateResponse response;
  grpc::Status s = Call(Request({"abc", "hello"}), &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.translations_size(), 2);
  EXPECT_EQ(response.translations(0).text(), "fra_Latn:cba");
  EXPECT_EQ(response.translations(1).text(), "fra_Latn:olleh");
  EXPECT_THAT(response.translations(0).token_ids(), ElementsAre('a', 'b', 'c'));
  EXPECT_EQ(response.model(), "fake-a");
  EXPECT_GE(response.queue_seconds(), 0);
  EXPECT_GE(response.compute_seconds(), 0);
}

TEST_F(ServicesTest, OptionsReachTheEngineWithDefaultsFilledIn) {
  v1::TranslateResponse response;
  v1::TranslateRequest request = Request({"abc"});
  ASSERT_TRUE(Call(request, &response).ok());
  EXPECT_EQ(primary_->last_params().beam_size, 1);
  EXPECT_FLOAT_EQ(primary_->last_params().length_penalty, 1.0f);
  EXPECT_EQ(primary_->last_params().max_length, 0);
  request.mutable_options()->set_beam_size(4);
  request.mutable_options()->set_length_penalty(0.5f);
  request.mutable_options()->set_max_length(17);
  ASSERT_TRUE(Call(request, &response).ok());
  EXPECT_EQ(primary_->last_params().beam_size, 4);
  EXPECT_FLOAT_EQ(primary_->last_params().length_penalty, 0.5f);
  EXPECT_EQ(primary_->last_params().max_length, 17);
  EXPECT_FALSE(primary_->last_params().fixed_length);
  request.mutable_options()->set_fixed_length(true);
  ASSERT_TRUE(Call(request, &response).ok());
  EXPECT_TRUE(primary_->last_params().fixed_length);
  request.mutable_options()->set_fixed_length(false);
  // 0 is a length penalty of its own (no normalisation), not "use the default".
  request.mutable_options()->set_length_penalty(0.0f);
  ASSERT_TRUE(Call(request, &response).ok());
  EXPECT_FLOAT_EQ(primary_->last_params().length_penalty, 0.0f);
}

TEST_F(ServicesTest, PrimaryModelServesBeforeFallbackAndFallbackFillsTheGaps) {
  v1::TranslateResponse response;
  ASSERT_TRUE(Call(Request({"x"}, "eng_Latn", "spa_Latn"), &response).ok());
  EXPECT_EQ(response.model(), "fake-a");
  ASSERT_TRUE(Call(Request({"x"}, "spa_Latn", "cat_Latn"), &response).ok());
  EXPECT_EQ(response.model(), "fake-fallback");
  EXPECT_EQ(response.translations(0).text(), "cat_Latn:x");
}

TEST_F(ServicesTest, RequestIdIsEchoedOrGenerated) {
  v1::TranslateResponse response;
  grpc::ClientContext with_id;
  with_id.AddMetadata("x-request-id", "req-42");
  ASSERT_TRUE(Call(Request({"a"}), &response, &with_id).ok());
  auto it = with_id.GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(it, with_id.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "req-42");

  grpc::ClientContext without_id;
  ASSERT_TRUE(Call(Request({"a"}), &response, &without_id).ok());
  it = without_id.GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(it, without_id.GetServerInitialMetadata().end());
  EXPECT_EQ(it->second.size(), 16u);

  // Errors carry it too.
  grpc::ClientContext failing;
  failing.AddMetadata("x-request-id", "req-43");
  ASSERT_FALSE(Call(Request({}), &response, &failing).ok());
  it = failing.GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(it, failing.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "req-43");
}

struct BadCase {
  const char* name;
  std::function<void(v1::TranslateRequest*)> mutate;
  std::vector<std::string> expected_substrings;
};

TEST_F(ServicesTest, EveryBadInputIsInvalidArgumentWithAHelpfulMessage) {
  const std::vector<BadCase> cases = {
      {"no texts", [](v1::TranslateRequest* r) { r->clear_texts(); }, {"at least one text"}},
      {"too many texts",
       [](v1::TranslateRequest* r) {
         for (int i = 0; i < 3; ++i) r->add_texts("more");
       },
       {"4 texts", "limit is 3"}},
      {"text over server.max_text_chars (counted in characters, not bytes)",
       [](v1::TranslateRequest* r) {
         std::string text;
         for (int i = 0; i < 61; ++i) text += "\xC3\xA9";  // 61 characters, 122 bytes
         r->add_texts(text);
       },
       {"texts[1] is 61 characters", "limit is 60", "server.max_text_chars"}},
      {"language that cannot be told",
       [](v1::TranslateRequest* r) {
         r->set_source_language("auto");
         r->set_texts(0, "12345 678");
       },
       {"texts[0]: cannot tell its language", "set source_language"}},
      {"blank do-not-translate term",
       [](v1::TranslateRequest* r) { r->mutable_options()->add_do_not_translate(" "); },
       {"options.do_not_translate[0] is empty"}},
      {"term with surrounding whitespace (it could fall between sentences)",
       [](v1::TranslateRequest* r) { r->mutable_options()->add_do_not_translate("Acme "); },
       {"options.do_not_translate[0] starts or ends with whitespace"}},
      {"empty glossary target",
       [](v1::TranslateRequest* r) { (*r->mutable_options()->mutable_glossary())["fine"] = ""; },
       {"options.glossary['fine'] has an empty target term"}},
      {"missing source", [](v1::TranslateRequest* r) { r->clear_source_language(); },
       {"source_language is required"}},
      {"unknown source, close match",
       [](v1::TranslateRequest* r) { r->set_source_language("eng_latn"); },
       {"unknown source_language 'eng_latn'", "did you mean eng_Latn"}},
      {"unknown target",
       [](v1::TranslateRequest* r) { r->set_target_language("xyz_Abcd"); },
       {"unknown target_language 'xyz_Abcd'", "fra_Latn"}},
      {"unsupported pair",
       [](v1::TranslateRequest* r) {
         r->set_source_language("spa_Latn");
         r->set_target_language("fra_Latn");
       },
       {"no loaded model translates spa_Latn to fra_Latn"}},
      {"negative beam", [](v1::TranslateRequest* r) { r->mutable_options()->set_beam_size(-2); },
       {"options.beam_size", "-2"}},
      {"beam too large for the engine",
       [](v1::TranslateRequest* r) { r->mutable_options()->set_beam_size(9); },
       {"beam size 9"}},
      {"negative max length",
       [](v1::TranslateRequest* r) { r->mutable_options()->set_max_length(-1); },
       {"options.max_length"}},
      {"nan length penalty",
       [](v1::TranslateRequest* r) { r->mutable_options()->set_length_penalty(NAN); },
       {"options.length_penalty"}},
      {"unknown priority",
       [](v1::TranslateRequest* r) { r->set_priority(static_cast<v1::Priority>(42)); },
       {"priority: 42", "PRIORITY_HIGH"}},
      {"text too long for the model",
       [](v1::TranslateRequest* r) { r->add_texts(std::string(41, 'x')); },
       {"texts[1] is too long", "41"}},
      {"a blank text next to a long one does not shift the index the engine's message names",
       [](v1::TranslateRequest* r) {
         r->set_texts(0, " ");
         r->add_texts("Short one. " + std::string(41, 'X'));
       },
       {"texts[1], sentence 2 of 2:", "too long"}},
      {"a sentence of a long text too long for the model: named by text and sentence",
       [](v1::TranslateRequest* r) { r->add_texts("Short one. " + std::string(41, 'X')); },
       {"texts[1], sentence 2 of 2:", "too long", "41"}},
  };
  for (const BadCase& c : cases) {
    v1::TranslateRequest request = Request({"fine"});
    c.mutate(&request);
    v1::TranslateResponse response;
    grpc::Status s = Call(request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name << ": "
                                                                   << s.error_message();
    for (const std::string& sub : c.expected_substrings) {
      EXPECT_THAT(s.error_message(), HasSubstr(sub)) << c.name;
    }
  }
  EXPECT_EQ(primary_->calls(), warm_up_calls_) << "only the warm-up may have reached the engine";
}

// gRPC's own parser refuses invalid UTF-8 in string fields before voxd sees the call; callers
// in the process (and any path around that parser) get the plan's INVALID_ARGUMENT.
TEST_F(ServicesTest, ThePlanRefusesInvalidUtf8NamingTheByte) {
  v1::TranslateRequest request = Request({"fine", "ok \xFF"});
  absl::StatusOr<TranslatePlan> plan =
      PlanTranslateCall(request, server_->registry(), TranslateLimits(), Glossaries());
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("texts[1]: invalid UTF-8 at byte 3"));
}

// Whole-text callers (SpeechTranslate's segments) refuse what only Translate implements.
TEST_F(ServicesTest, RouteTranslateRequestRefusesAutoAndProtectedTerms) {
  v1::TranslateRequest request = Request({"fine"}, "auto");
  absl::StatusOr<RoutedTranslation> routed = RouteTranslateRequest(request, server_->registry(), 1);
  ASSERT_FALSE(routed.ok());
  EXPECT_EQ(routed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(routed.status().message(), HasSubstr("supported by Translate only"));
  request = Request({"fine"});
  request.mutable_options()->add_do_not_translate("fine");
  routed = RouteTranslateRequest(request, server_->registry(), 1);
  ASSERT_FALSE(routed.ok());
  EXPECT_THAT(routed.status().message(), HasSubstr("supported by Translate only"));
  routed = RouteTranslateRequest(Request({"fine"}), server_->registry(), 1);
  ASSERT_TRUE(routed.ok()) << routed.status();
  EXPECT_EQ(routed->model->engine->info().name, "fake-a");
}

// Long text: each sentence is one sequence, rejoined with the text's own whitespace; blank
// texts come back as they were.
TEST_F(ServicesTest, LongTextsAreTranslatedSentenceBySentenceAndRejoined) {
  v1::TranslateResponse response;
  // The second text is longer than the fake's 40-character limit, but each sentence fits.
  grpc::Status s = Call(Request({"  \n", "One two. Three four!\n\n  Five six?  ", "abc"}),
                        &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.translations_size(), 3);
  EXPECT_EQ(response.translations(0).text(), "  \n");
  EXPECT_EQ(response.translations(0).sentence_count(), 0);
  EXPECT_EQ(response.translations(1).text(),
            "fra_Latn:.owt enO fra_Latn:!ruof eerhT\n\n  fra_Latn:?xis eviF  ");
  EXPECT_EQ(response.translations(1).sentence_count(), 3);
  // Token ids: the sentences' ids one after the other (the fake: one id per character).
  EXPECT_EQ(response.translations(1).token_ids_size(),
            static_cast<int>(std::string("One two.Three four!Five six?").size()));
  EXPECT_EQ(response.translations(1).token_ids(0), 'O');
  EXPECT_EQ(response.translations(2).text(), "fra_Latn:cba");
  EXPECT_EQ(response.translations(2).sentence_count(), 1);
}

// More sentences than the queue holds (4) come back, in order: the call keeps at most
// max_texts_per_call (3) of them outstanding.
TEST_F(ServicesTest, ADocumentLongerThanTheQueueIsFedThroughAWindow) {
  std::string text, expected;
  for (int i = 0; i < 12; ++i) {
    const std::string sentence = absl::StrCat("S", i, ".");
    absl::StrAppend(&text, i == 0 ? "" : (i % 5 == 0 ? "\n\n" : " "), sentence);
    absl::StrAppend(&expected, i == 0 ? "" : (i % 5 == 0 ? "\n\n" : " "), "fra_Latn:",
                    std::string(sentence.rbegin(), sentence.rend()));
  }
  for (bool stepper : {false, true}) {
    ServerSetup setup;
    setup.translation_stepper = stepper;
    TearDown();
    StartServer(setup);
    v1::TranslateResponse response;
    grpc::Status s = Call(Request({text}), &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.translations(0).text(), expected);
    EXPECT_EQ(response.translations(0).sentence_count(), 12);
  }
}

// A sentence that fails in the middle of a windowed document fails the call (INTERNAL), stops
// the submitting, and leaves the server serving.
TEST_F(ServicesTest, AFailingSentenceInALongTextFailsTheCallAndStopsTheRest) {
  std::string text;
  for (int i = 0; i < 10; ++i) {
    absl::StrAppend(&text, i == 4 ? "fail" : absl::StrCat("S", i, "."), "\n");
  }
  for (bool stepper : {false, true}) {
    ServerSetup setup;
    setup.translation_stepper = stepper;
    TearDown();
    StartServer(setup);
    v1::TranslateResponse response;
    grpc::Status s = Call(Request({text}), &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("tensor exploded"));
    EXPECT_EQ(response.translations_size(), 0);
    s = Call(Request({"abc"}), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
}

// Protected terms: masked with placeholders; a model that copies them gets the required target
// text back in place, one that does not has the term reported, never silently dropped.
TEST_F(ServicesTest, ProtectedTermsArePlacedOrReported) {
  v1::TranslateRequest request = Request({"=Use Acme Cloud. Acme is fine.", "Ask Acme."});
  request.mutable_options()->add_do_not_translate("Acme");
  (*request.mutable_options()->mutable_glossary())["Acme Cloud"] = "Nube Acme";
  v1::TranslateResponse response;
  grpc::Status s = Call(request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.translations_size(), 2);
  // The copying fake ('=' texts) returns the placeholders: every term is placed. (Its second
  // sentence does not start with '=', so the fake reverses it and loses that placeholder.)
  EXPECT_EQ(response.translations(0).text(), "fra_Latn:=Use Nube Acme. fra_Latn:.enif si ]1T[");
  EXPECT_THAT(response.translations(0).unplaced_terms(), ElementsAre("Acme"));
  EXPECT_EQ(response.translations(0).sentence_count(), 2);
  // The reversing fake mangles "[T1]": reported, and the term is not in the text.
  EXPECT_EQ(response.translations(1).text(), "fra_Latn:.]1T[ ksA");
  EXPECT_THAT(response.translations(1).unplaced_terms(), ElementsAre("Acme"));
}

TEST_F(ServicesTest, AutoDetectsEachTextsLanguage) {
  v1::TranslateRequest request =
      Request({"The weather is very nice today.", " ", "Where is the train station?"}, "auto",
              "fra_Latn");
  v1::TranslateResponse response;
  grpc::Status s = Call(request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(response.translations_size(), 3);
  EXPECT_EQ(response.translations(0).detected_language(), "eng_Latn");
  EXPECT_GE(response.translations(0).detection_confidence(), 0.5f);
  EXPECT_EQ(response.translations(1).detected_language(), "");  // blank: passed through
  EXPECT_EQ(response.translations(2).detected_language(), "eng_Latn");
  // A detected language no model translates into the target is refused, naming it.
  request = Request({"Le train part dans dix minutes pour la ville."}, "auto", "spa_Latn");
  s = Call(request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("fra_Latn to spa_Latn"));
}

TEST_F(ServicesTest, EngineFailureIsInternalWithTheRequestId) {
  v1::TranslateResponse response;
  grpc::ClientContext context;
  context.AddMetadata("x-request-id", "boom-1");
  grpc::Status s = Call(Request({"ok", "fail"}), &response, &context);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(s.error_message(), HasSubstr("tensor exploded"));
  EXPECT_THAT(s.error_message(), HasSubstr("boom-1"));
  EXPECT_EQ(response.translations_size(), 0);
}

TEST_F(ServicesTest, EngineExceptionIsInternalAndTheServerKeepsServing) {
  v1::TranslateResponse response;
  grpc::Status s = Call(Request({"throw"}), &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(s.error_message(), HasSubstr("c10::Error imitation"));
  EXPECT_TRUE(Call(Request({"after"}), &response).ok());
}

TEST_F(ServicesTest, DeadlineReachesTheEngineAsItsStopCheck) {
  v1::TranslateResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  grpc::Status s = Call(Request({"block"}), &response, &context);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The engine itself stopped because of the deadline (not only the client giving up).
  primary_->stopped().WaitForNotification();
  EXPECT_TRUE(primary_->stopped_with().code() == absl::StatusCode::kDeadlineExceeded ||
              primary_->stopped_with().code() == absl::StatusCode::kCancelled)
      << primary_->stopped_with();
}

TEST_F(ServicesTest, ClientCancellationStopsTheEngine) {
  v1::TranslateResponse response;
  grpc::ClientContext context;
  std::thread canceller([&] {
    primary_->running().WaitForNotification();
    context.TryCancel();
  });
  grpc::Status s = Call(Request({"block"}), &response, &context);
  canceller.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED);
  primary_->stopped().WaitForNotification();
  EXPECT_EQ(primary_->stopped_with().code(), absl::StatusCode::kCancelled);
}

TEST_F(ServicesTest, FullQueueIsResourceExhaustedAtOnce) {
  TearDown();
  StartServer(/*queue_size=*/1);
  // Call 1 occupies the engine, call 2 waits in the queue, call 3 finds it full.
  grpc::ClientContext c1, c2;
  v1::TranslateResponse r1, r2, r3;
  grpc::Status s1, s2;
  std::thread t1([&] { s1 = Call(Request({"block"}), &r1, &c1); });
  primary_->running().WaitForNotification();
  std::thread t2([&] { s2 = Call(Request({"queued"}), &r2, &c2); });
  while (PrimaryModel().scheduler->queue_depth() < 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  grpc::Status s3 = Call(Request({"third"}), &r3);
  EXPECT_EQ(s3.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s3.error_message(), HasSubstr("fake-a"));
  EXPECT_THAT(server_->metrics()->Scrape(),
              HasSubstr("vox_rejections_total{engine=\"fake-a\",reason=\"queue_full\"} 1"));
  primary_->Release();
  t1.join();
  t2.join();
  EXPECT_TRUE(s1.ok()) << s1.error_message();
  EXPECT_TRUE(s2.ok()) << s2.error_message();
  EXPECT_EQ(r2.translations(0).text(), "fra_Latn:deueuq");
}

TEST_F(ServicesTest, ShutdownLetsInFlightCallsFinishAndRefusesNewOnes) {
  grpc::ClientContext c1;
  v1::TranslateResponse r1;
  grpc::Status s1;
  std::thread t1([&] { s1 = Call(Request({"block"}), &r1, &c1); });
  primary_->running().WaitForNotification();
  std::thread stopper([&] { server_->Shutdown(absl::Seconds(30)); });
  while (!server_->draining()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // New calls fail (UNAVAILABLE while draining, or the connection is refused) while the
  // in-flight one is still running.
  v1::TranslateResponse r2;
  grpc::Status s2;
  do {
    grpc::ClientContext c2;
    c2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    s2 = stub_->Translate(&c2, Request({"late"}), &r2);
  } while (s2.ok());
  // UNAVAILABLE from voxd's drain check, or CANCELLED when gRPC's own shutdown got the call
  // first; never OK, never queued behind the in-flight call.
  EXPECT_TRUE(s2.error_code() == grpc::StatusCode::UNAVAILABLE ||
              s2.error_code() == grpc::StatusCode::CANCELLED)
      << s2.error_code() << " " << s2.error_message();
  EXPECT_FALSE(primary_->stopped().HasBeenNotified());
  primary_->Release();
  t1.join();
  stopper.join();
  EXPECT_TRUE(s1.ok()) << s1.error_message();
  EXPECT_EQ(r1.translations(0).text(), "fra_Latn:kcolb");
}

TEST_F(ServicesTest, ListModelsReportsEveryEngine) {
  grpc::ClientContext context;
  v1::ListModelsResponse response;
  ASSERT_TRUE(discovery_->ListModels(&context, {}, &response).ok());
  ASSERT_EQ(response.models_size(), 3);
  EXPECT_EQ(response.models(0).name(), "fake-a");
  EXPECT_EQ(response.models(0).kind(), "translation");
  EXPECT_EQ(response.models(0).device(), "cpu");
  EXPECT_EQ(response.models(0).dtype(), "float32");
  EXPECT_FALSE(response.models(0).fallback());
  EXPECT_TRUE(response.models(1).fallback());
  EXPECT_EQ(response.models(2).name(), "fake-voice");
  EXPECT_EQ(response.models(2).kind(), "speech");
  EXPECT_THAT(response.models(0).languages(), ElementsAre("eng_Latn", "fra_Latn", "spa_Latn"));
}

TEST_F(ServicesTest, ListLanguagesMergesEnginesAndDirections) {
  grpc::ClientContext context;
  v1::ListLanguagesResponse response;
  ASSERT_TRUE(discovery_->ListLanguages(&context, {}, &response).ok());
  std::map<std::string, v1::Language> by_code;
  for (const auto& l : response.languages()) by_code[l.code()] = l;
  ASSERT_EQ(by_code.size(), 4u);  // cat eng fra spa
  EXPECT_TRUE(by_code["eng_Latn"].translate_source());
  EXPECT_TRUE(by_code["eng_Latn"].translate_target());  // fra -> eng
  EXPECT_TRUE(by_code["eng_Latn"].speech());
  EXPECT_THAT(by_code["eng_Latn"].translation_engines(), ElementsAre("fake-a", "fake-fallback"));
  EXPECT_FALSE(by_code["cat_Latn"].translate_source());
  EXPECT_TRUE(by_code["cat_Latn"].translate_target());
  EXPECT_TRUE(by_code["spa_Latn"].translate_source());  // spa -> cat (fallback)
  EXPECT_FALSE(by_code["fra_Latn"].speech());
  EXPECT_THAT(by_code["cat_Latn"].speech_engines(), ElementsAre("fake-voice"));
}

TEST_F(ServicesTest, ListVoicesFiltersByLanguageAndRejectsUnknownOnes) {
  grpc::ClientContext all_ctx;
  v1::ListVoicesResponse all;
  ASSERT_TRUE(discovery_->ListVoices(&all_ctx, {}, &all).ok());
  ASSERT_EQ(all.voices_size(), 2);
  EXPECT_EQ(all.voices(0).name(), "Ana");
  EXPECT_EQ(all.voices(0).model(), "fake-voice");
  EXPECT_EQ(all.voices(0).native_sample_rate_hz(), 22050);

  grpc::ClientContext cat_ctx;
  v1::ListVoicesRequest cat_req;
  cat_req.set_language("cat_Latn");
  v1::ListVoicesResponse cat;
  ASSERT_TRUE(discovery_->ListVoices(&cat_ctx, cat_req, &cat).ok());
  ASSERT_EQ(cat.voices_size(), 1);
  EXPECT_EQ(cat.voices(0).name(), "Bo");

  grpc::ClientContext bad_ctx;
  v1::ListVoicesRequest bad_req;
  bad_req.set_language("spa_latn");
  v1::ListVoicesResponse bad;
  grpc::Status s = discovery_->ListVoices(&bad_ctx, bad_req, &bad);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("did you mean spa_Latn"));

  grpc::ClientContext refused_ctx;
  v1::ListVoicesRequest refused_req;
  refused_req.set_language("jpn_Jpan");
  v1::ListVoicesResponse refused;
  s = discovery_->ListVoices(&refused_ctx, refused_req, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("jpn_Jpan is refused by fake-voice"));
}

}  // namespace
}  // namespace vox

namespace vox {
namespace {

TEST_F(ServicesTest, EveryCallIsCountedInTheMetricsByMethodAndCode) {
  v1::TranslateResponse response;
  ASSERT_TRUE(Call(Request({"abc"}), &response).ok());
  ASSERT_TRUE(Call(Request({"abc"}), &response).ok());
  ASSERT_FALSE(Call(Request({}), &response).ok());
  grpc::ClientContext context;
  v1::ListModelsResponse models;
  ASSERT_TRUE(discovery_->ListModels(&context, {}, &models).ok());
  const std::string text = server_->metrics()->Scrape();
  EXPECT_THAT(text, HasSubstr("vox_requests_total{code=\"OK\",method=\"Translate\"} 2"));
  EXPECT_THAT(text,
              HasSubstr("vox_requests_total{code=\"INVALID_ARGUMENT\",method=\"Translate\"} 1"));
  EXPECT_THAT(text, HasSubstr("vox_requests_total{code=\"OK\",method=\"ListModels\"} 1"));
  EXPECT_THAT(text, HasSubstr("name=\"fake-a\""));  // model info
}

}  // namespace
}  // namespace vox

namespace vox {
namespace {

struct SynthesisResult {
  grpc::Status status;
  std::vector<v1::SynthesizeResponse> messages;
};

SynthesisResult Synthesize(v1::SpeechService::Stub* stub, const v1::SynthesizeRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = stub->Synthesize(&context, request);
  SynthesisResult result;
  v1::SynthesizeResponse msg;
  while (reader->Read(&msg)) result.messages.push_back(msg);
  result.status = reader->Finish();
  return result;
}

v1::SynthesizeRequest SpeakRequest(const std::string& text, v1::AudioEncoding encoding) {
  v1::SynthesizeRequest r;
  r.set_text(text);
  r.set_language("spa_Latn");
  r.mutable_audio()->set_encoding(encoding);
  return r;
}

TEST_F(ServicesTest, SynthesizeStreamsHeaderThenOggAudioThenSummary) {
  SynthesisResult r = Synthesize(speech_.get(), SpeakRequest("hola", v1::AUDIO_ENCODING_OGG_OPUS));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_GE(r.messages.size(), 3u);
  ASSERT_TRUE(r.messages.front().has_header());
  EXPECT_EQ(r.messages.front().header().encoding(), v1::AUDIO_ENCODING_OGG_OPUS);
  EXPECT_EQ(r.messages.front().header().sample_rate_hz(), 24000);
  EXPECT_EQ(r.messages.front().header().channels(), 1);
  ASSERT_TRUE(r.messages.back().has_summary());
  std::string ogg;
  for (size_t i = 1; i + 1 < r.messages.size(); ++i) {
    ASSERT_TRUE(r.messages[i].has_audio()) << i;
    ogg += r.messages[i].audio().data();
  }
  EXPECT_EQ(ogg.substr(0, 4), "OggS");
  EXPECT_NE(ogg.find("OpusHead"), std::string::npos);
  const v1::SynthesisSummary& s = r.messages.back().summary();
  // 0.5 s at 22050 Hz resampled to 24000 Hz.
  EXPECT_NEAR(s.total_samples(), 12000, 480);
  EXPECT_NEAR(s.audio_seconds(), 0.5, 0.02);
  EXPECT_EQ(s.voice(), "Ana");  // the first voice listed for spa_Latn
  EXPECT_EQ(s.seed(), 7u);
  EXPECT_EQ(s.codes(), 11);
  EXPECT_GT(s.synthesis_seconds(), 0);
  EXPECT_LE(s.time_to_first_audio_seconds(), s.synthesis_seconds());
}

TEST_F(ServicesTest, SynthesisForcedCodesReachTheEngineAndNegativeIsRejected) {
  v1::SynthesizeRequest request = SpeakRequest("hola", v1::AUDIO_ENCODING_OPUS);
  absl::StatusOr<RoutedSynthesis> routed = RouteSynthesizeRequest(request, server_->registry(), nullptr);
  ASSERT_TRUE(routed.ok()) << routed.status();
  EXPECT_EQ(routed->request.params.forced_codes, 0);
  request.mutable_options()->set_forced_codes(100);
  routed = RouteSynthesizeRequest(request, server_->registry(), nullptr);
  ASSERT_TRUE(routed.ok()) << routed.status();
  EXPECT_EQ(routed->request.params.forced_codes, 100);
  request.mutable_options()->set_forced_codes(-1);
  routed = RouteSynthesizeRequest(request, server_->registry(), nullptr);
  EXPECT_EQ(routed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(routed.status().message()), HasSubstr("forced_codes"));
}

TEST_F(ServicesTest, SynthesizePcm16AtTheNativeRateCarriesEverySample) {
  v1::SynthesizeRequest request = SpeakRequest("hola", v1::AUDIO_ENCODING_PCM16);
  request.mutable_audio()->set_sample_rate_hz(22050);
  request.set_voice("Ana");
  SynthesisResult r = Synthesize(speech_.get(), request);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  size_t bytes = 0;
  int64_t next_timestamp = 0;
  for (const auto& m : r.messages) {
    if (!m.has_audio()) continue;
    EXPECT_EQ(m.audio().timestamp_samples(), next_timestamp);
    next_timestamp += m.audio().num_samples();
    bytes += m.audio().data().size();
  }
  EXPECT_EQ(bytes, 2u * 11025u);  // 5 chunks of 2205 samples, 2 bytes each
  EXPECT_EQ(r.messages.back().summary().total_samples(), 11025);
}

TEST_F(ServicesTest, SynthesizeBadInputsAreInvalidArgumentNamingTheValue) {
  struct Case {
    const char* name;
    std::function<void(v1::SynthesizeRequest*)> mutate;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"empty text", [](v1::SynthesizeRequest* r) { r->set_text(" "); }, {"text is empty"}},
      {"no language", [](v1::SynthesizeRequest* r) { r->clear_language(); },
       {"language is required"}},
      {"unknown language", [](v1::SynthesizeRequest* r) { r->set_language("spa_latn"); },
       {"did you mean spa_Latn"}},
      {"refused language", [](v1::SynthesizeRequest* r) { r->set_language("jpn_Jpan"); },
       {"language jpn_Jpan is refused by fake-voice: needs a romaniser vox lacks"}},
      {"voice of another language", [](v1::SynthesizeRequest* r) { r->set_voice("Bo"); },
       {"unknown voice 'Bo'", "Ana", "spa_Latn"}},
      {"unknown voice", [](v1::SynthesizeRequest* r) { r->set_voice("Anna"); },
       {"did you mean Ana"}},
      {"bad encoding",
       [](v1::SynthesizeRequest* r) {
         r->mutable_audio()->set_encoding(static_cast<v1::AudioEncoding>(9));
       },
       {"audio.encoding: 9"}},
      {"bad opus rate", [](v1::SynthesizeRequest* r) { r->mutable_audio()->set_sample_rate_hz(16000); },
       {"audio:", "16000"}},
      {"bad top_p", [](v1::SynthesizeRequest* r) { r->mutable_options()->set_top_p(2); },
       {"top_p"}},
  };
  for (const Case& c : cases) {
    v1::SynthesizeRequest request = SpeakRequest("hola", v1::AUDIO_ENCODING_OGG_OPUS);
    c.mutate(&request);
    SynthesisResult r = Synthesize(speech_.get(), request);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.name << ": " << r.status.error_message();
    for (const std::string& e : c.expected) {
      EXPECT_THAT(r.status.error_message(), HasSubstr(e)) << c.name;
    }
    EXPECT_TRUE(r.messages.empty()) << c.name;
  }
}

TEST_F(ServicesTest, SynthesizeEngineFailureIsInternal) {
  SynthesisResult r = Synthesize(speech_.get(), SpeakRequest("fail", v1::AUDIO_ENCODING_OPUS));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(r.status.error_message(), HasSubstr("vocoder exploded"));
}

TEST_F(ServicesTest, CancellingASynthesisMidStreamStopsTheEngineAtTheNextStep) {
  TearDown();
  ServerSetup setup;
  setup.speech_stepper = true;
  StartServer(setup);
  grpc::ClientContext context;
  auto reader = speech_->Synthesize(&context, SpeakRequest("block", v1::AUDIO_ENCODING_OPUS));
  v1::SynthesizeResponse msg;
  int audio_messages = 0;
  while (audio_messages < 3 && reader->Read(&msg)) {
    if (msg.has_audio()) ++audio_messages;
  }
  ASSERT_EQ(audio_messages, 3);
  context.TryCancel();
  while (reader->Read(&msg)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The sequence left the engine unfinished (it would otherwise step forever).
  while (voice_->left_unfinished() < 1) absl::SleepFor(absl::Milliseconds(1));
  while (server_->speech_service()->stopped_early() < 1) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(server_->speech_service()->stopped_early(), 1);
  EXPECT_EQ(voice_->left_unfinished(), 1);
}

TEST_F(ServicesTest, CancellingAWholeRequestSynthesisStopsTheEngineThroughItsStopCheck) {
  // No stepper: the engine synthesizes the whole request in one step and polls its StopCheck.
  grpc::ClientContext context;
  auto reader = speech_->Synthesize(&context, SpeakRequest("block", v1::AUDIO_ENCODING_OPUS));
  v1::SynthesizeResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  ASSERT_TRUE(msg.has_header());
  // The header goes out before the sequence joins: cancelling while it still waits in the queue
  // would end it without ever running the engine. Cancel once the engine runs it.
  ASSERT_TRUE(voice_->running().WaitForNotificationWithTimeout(absl::Seconds(20)));
  context.TryCancel();
  while (reader->Read(&msg)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(voice_->stopped().WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(voice_->stopped_with().code(), absl::StatusCode::kCancelled);
}

// The audio messages are exactly what one AudioStreamEncoder makes of the scheduler's chunks
// (a whole-request engine's audio in chunk_ms pieces), pushed in order and finished once,
// wherever the server runs the encoder: same bytes, packets, boundaries and timestamps.
TEST_F(ServicesTest, SynthesizeAudioIsTheEncoderRunOverTheEnginesChunksInOrder) {
  std::vector<float> audio;
  SynthesisRequest engine_request;
  engine_request.text = "hola";
  ASSERT_TRUE(voice_->Synthesize(engine_request,
                                 [&](absl::Span<const float> s) {
                                   audio.insert(audio.end(), s.begin(), s.end());
                                   return true;
                                 },
                                 {})
                  .ok());
  const size_t step = static_cast<size_t>(voice_->sample_rate() *
                                          SpeechStepModelOptions().chunk_ms / 1000);
  std::vector<std::vector<float>> chunks;
  for (size_t at = 0; at < audio.size(); at += step) {
    chunks.emplace_back(audio.begin() + at, audio.begin() + std::min(audio.size(), at + step));
  }
  ASSERT_EQ(chunks.size(), 3u);  // 0.5 s: 0.2 + 0.2 + 0.1
  for (v1::AudioEncoding encoding : {v1::AUDIO_ENCODING_OPUS, v1::AUDIO_ENCODING_PCM16}) {
    SCOPED_TRACE(v1::AudioEncoding_Name(encoding));
    AudioStreamConfig config;
    config.encoding = encoding == v1::AUDIO_ENCODING_OPUS ? AudioEncoding::kOpus
                                                          : AudioEncoding::kPcm16;
    config.sample_rate_hz = 24000;  // resampled from the engine's 22050 Hz
    config.complexity = -1;
    auto encoder = AudioStreamEncoder::Create(config, voice_->sample_rate());
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    std::vector<EncodedAudio> want;
    for (const auto& c : chunks) {
      EncodedAudio out;
      ASSERT_TRUE((*encoder)->Push(c, &out).ok());
      if (!out.empty()) want.push_back(std::move(out));
    }
    EncodedAudio tail;
    ASSERT_TRUE((*encoder)->Finish(&tail).ok());
    if (!tail.empty()) want.push_back(std::move(tail));

    v1::SynthesizeRequest request = SpeakRequest("hola", encoding);
    request.mutable_audio()->set_sample_rate_hz(24000);
    SynthesisResult r = Synthesize(speech_.get(), request);
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    std::vector<v1::AudioChunk> got;
    for (const auto& m : r.messages) {
      if (m.has_audio()) got.push_back(m.audio());
    }
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].data(), want[i].data) << i;
      EXPECT_THAT(got[i].packets(), ElementsAreArray(want[i].packets)) << i;
      EXPECT_EQ(got[i].sequence(), want[i].sequence) << i;
      EXPECT_EQ(got[i].timestamp_samples(), want[i].timestamp_samples) << i;
      EXPECT_EQ(got[i].num_samples(), want[i].num_samples) << i;
    }
    EXPECT_EQ(r.messages.back().summary().total_samples(), (*encoder)->total_samples());
  }
}

TEST_F(ServicesTest, SynthesizeWithAStepperStreamsTheSameAudioAsAWholeRequest) {
  v1::SynthesizeRequest request = SpeakRequest("hola", v1::AUDIO_ENCODING_PCM16);
  request.mutable_audio()->set_sample_rate_hz(22050);
  SynthesisResult whole = Synthesize(speech_.get(), request);
  ASSERT_TRUE(whole.status.ok()) << whole.status.error_message();
  TearDown();
  ServerSetup setup;
  setup.speech_stepper = true;
  StartServer(setup);
  SynthesisResult stepped = Synthesize(speech_.get(), request);
  ASSERT_TRUE(stepped.status.ok()) << stepped.status.error_message();
  std::string a, b;
  for (const auto& m : whole.messages) {
    if (m.has_audio()) a += m.audio().data();
  }
  for (const auto& m : stepped.messages) {
    if (m.has_audio()) b += m.audio().data();
  }
  EXPECT_EQ(a.size(), 2u * 11025u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(stepped.messages.back().summary().codes(), 11);
  EXPECT_EQ(stepped.messages.back().summary().voice(), "Ana");
}

}  // namespace
}  // namespace vox

namespace vox {
namespace {

// --- The scheduler behind the services.

std::string Expected(const std::string& target, const std::string& text) {
  return target + ":" + std::string(text.rbegin(), text.rend());
}

class SchedulerServicesTest : public ServicesTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    ServerSetup setup;
    setup.queue_size = 64;
    setup.translation_stepper = GetParam();
    StartServer(setup);
  }
};

TEST_P(SchedulerServicesTest, ManyConcurrentClientsGetTheAnswersOfSingleCalls) {
  // Reference answers, one call at a time.
  std::vector<std::vector<std::string>> requests;
  for (int i = 0; i < 48; ++i) {
    std::vector<std::string> texts;
    for (int k = 0; k <= i % 3; ++k) texts.push_back(absl::StrCat("text ", i, "-", k, std::string(i % 7, 'z')));
    requests.push_back(texts);
  }
  std::vector<std::vector<std::string>> single(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    v1::TranslateResponse r;
    ASSERT_TRUE(Call(Request(requests[i], "eng_Latn", i % 2 ? "fra_Latn" : "spa_Latn"), &r).ok());
    for (const auto& t : r.translations()) single[i].push_back(t.text());
  }
  // The same calls from 16 clients at once.
  std::vector<std::vector<std::string>> concurrent(requests.size());
  std::vector<grpc::Status> status(requests.size());
  std::vector<std::thread> clients;
  std::atomic<size_t> next{0};
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&] {
      for (size_t i = next.fetch_add(1); i < requests.size(); i = next.fetch_add(1)) {
        v1::TranslateResponse r;
        status[i] = Call(Request(requests[i], "eng_Latn", i % 2 ? "fra_Latn" : "spa_Latn"), &r);
        for (const auto& t : r.translations()) concurrent[i].push_back(t.text());
      }
    });
  }
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(status[i].ok()) << i << ": " << status[i].error_message();
    EXPECT_EQ(concurrent[i], single[i]) << i;
    ASSERT_EQ(single[i].size(), requests[i].size());
    EXPECT_EQ(single[i][0], Expected(i % 2 ? "fra_Latn" : "spa_Latn", requests[i][0]));
  }
}

TEST_F(ServicesTest, WarmUpRunsAFullConcurrentBatchThroughTheScheduler) {
  TearDown();
  ServerSetup setup;
  setup.translation_stepper = true;
  setup.queue_size = 64;
  StartServer(setup);
  // max_batch_size sequences at once: they shared decode steps.
  EXPECT_EQ(primary_->joined().size(), 8u);
  EXPECT_GT(primary_->max_step_batch(), 1);
  // Speech warm-up is bounded: weights that never say stop must not run to the model's limit.
  const std::vector<int> seen = voice_->max_codes_seen();
  ASSERT_FALSE(seen.empty());
  for (int m : seen) EXPECT_EQ(m, 16);
}

TEST_P(SchedulerServicesTest, OneFailingTextFailsOnlyItsOwnCall) {
  std::thread bad([&] {
    v1::TranslateResponse r;
    grpc::Status s = Call(Request({"fail", "fine"}), &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
    EXPECT_THAT(s.error_message(), HasSubstr("tensor exploded"));
  });
  v1::TranslateResponse r;
  ASSERT_TRUE(Call(Request({"good", "also good"}), &r).ok());
  EXPECT_EQ(r.translations(1).text(), "fra_Latn:doog osla");
  bad.join();
}

INSTANTIATE_TEST_SUITE_P(WholeCallsAndStepper, SchedulerServicesTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Stepper" : "WholeCalls"; });

TEST_F(ServicesTest, ClientCancelMidDecodeStopsTheSequenceAtTheNextStep) {
  TearDown();
  ServerSetup setup;
  setup.translation_stepper = true;
  StartServer(setup);
  grpc::ClientContext context;
  v1::TranslateResponse response;
  const int warm_up_steps = primary_->steps();
  std::thread canceller([&] {
    while (primary_->steps() < warm_up_steps + 3) absl::SleepFor(absl::Milliseconds(1));
    context.TryCancel();
  });
  grpc::Status s = Call(Request({"block"}), &response, &context);
  canceller.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED);
  // The server cancelled the ticket: the sequence left the engine unfinished, and no step runs
  // after that (nothing else is active).
  while (primary_->left_unfinished() < 1) absl::SleepFor(absl::Milliseconds(1));
  const int steps = primary_->steps();
  v1::TranslateResponse after;
  ASSERT_TRUE(Call(Request({"ab"}), &after).ok());  // 2 more steps, then idle
  EXPECT_EQ(primary_->steps(), steps + 2);
  EXPECT_EQ(primary_->left_unfinished(), 1);
}

TEST_F(ServicesTest, DeadlineMidDecodeIsDeadlineExceededOnTheSchedulersClock) {
  TearDown();
  FakeClock& clock = NewFakeClock();
  ServerSetup setup;
  setup.translation_stepper = true;
  setup.clock = &clock;
  StartServer(setup);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::TranslateResponse response;
  const int warm_up_steps = primary_->steps();
  std::thread advancer([&] {
    while (primary_->steps() < warm_up_steps + 3) absl::SleepFor(absl::Milliseconds(1));
    clock.Advance(absl::Seconds(61));  // the call's deadline passes between two steps
  });
  grpc::Status s = Call(Request({"block"}), &response, &context);
  advancer.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(s.error_message(), HasSubstr("while running on 'fake-a'"));
  while (primary_->left_unfinished() < 1) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_THAT(server_->metrics()->Scrape(),
              HasSubstr("vox_rejections_total{engine=\"fake-a\",reason=\"deadline_running\"} 1"));
}

TEST_F(ServicesTest, DeadlineInTheQueueIsDeadlineExceeded) {
  TearDown();
  FakeClock& clock = NewFakeClock();
  ServerSetup setup;
  setup.clock = &clock;
  setup.max_queue_delay_us = 3600LL * 1000 * 1000;  // an idle engine waits for a fuller batch
  setup.queue_size = 64;  // the warm-up's full batch starts at once
  StartServer(setup);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::TranslateResponse response;
  std::thread advancer([&] {
    while (PrimaryModel().scheduler->queue_depth() < 1) absl::SleepFor(absl::Milliseconds(1));
    clock.Advance(absl::Seconds(61));
  });
  grpc::Status s = Call(Request({"never runs"}), &response, &context);
  advancer.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(s.error_message(), HasSubstr("in the queue of 'fake-a'"));
  EXPECT_EQ(primary_->calls(), warm_up_calls_);
}

TEST_F(ServicesTest, HighPriorityIsServedBeforeLowWhenBothWait) {
  TearDown();
  ServerSetup setup;
  setup.translation_stepper = true;
  setup.max_batch_size = 1;  // one sequence at a time: the rest wait in the queue
  setup.queue_size = 8;
  StartServer(setup);
  grpc::ClientContext blocker_context;
  const int warm_up_steps = primary_->steps();
  std::thread blocker([&] {
    v1::TranslateResponse r;
    EXPECT_EQ(Call(Request({"block"}), &r, &blocker_context).error_code(),
              grpc::StatusCode::CANCELLED);
  });
  while (primary_->steps() < warm_up_steps + 1) absl::SleepFor(absl::Milliseconds(1));
  auto call = [&](const std::string& text, v1::Priority priority) {
    return std::thread([this, text, priority] {
      v1::TranslateRequest request = Request({text});
      request.set_priority(priority);
      v1::TranslateResponse r;
      EXPECT_TRUE(Call(request, &r).ok());
    });
  };
  std::thread low = call("low", v1::PRIORITY_LOW);
  while (PrimaryModel().scheduler->queue_depth() < 1) absl::SleepFor(absl::Milliseconds(1));
  std::thread normal = call("normal", v1::PRIORITY_NORMAL);
  while (PrimaryModel().scheduler->queue_depth() < 2) absl::SleepFor(absl::Milliseconds(1));
  std::thread high = call("high", v1::PRIORITY_HIGH);
  while (PrimaryModel().scheduler->queue_depth() < 3) absl::SleepFor(absl::Milliseconds(1));
  blocker_context.TryCancel();  // frees the only slot: the queue is served by priority
  blocker.join();
  low.join();
  normal.join();
  high.join();
  std::vector<std::string> joined = primary_->joined();
  auto block = std::find(joined.begin(), joined.end(), "block");
  ASSERT_NE(block, joined.end());
  EXPECT_THAT(std::vector<std::string>(block, joined.end()),
              ElementsAre("block", "high", "normal", "low"));
}

// Reads nothing until told; the transport windows, then the server's stream buffer fill.
struct StalledStream {
  std::unique_ptr<v1::SpeechService::Stub> stub;  // its own connection (HTTP/2 windows)
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::SynthesizeResponse>> reader;
  // Reads everything left; the call's final status.
  grpc::Status Drain() {
    v1::SynthesizeResponse msg;
    while (reader->Read(&msg)) {
    }
    return reader->Finish();
  }
};

int PausedStreams(Metrics* metrics) {
  const std::string text = metrics->Scrape();
  const std::string key = "vox_paused_streams{engine=\"fake-voice\",stage=\"synthesize\"} ";
  const size_t at = text.find(key);
  if (at == std::string::npos) return -1;
  return std::atoi(text.c_str() + at + key.size());
}

class PausedStreamTest : public ServicesTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {}
  void Start(int max_paused_slots) {
    ServerSetup setup;
    setup.speech_stepper = GetParam();
    setup.stream_buffer_bytes = 1;  // pause as soon as a message waits
    setup.max_paused_slots = max_paused_slots;
    StartServer(setup);
  }
  // A stub on a connection of its own: an unread stream fills its connection's flow-control
  // window, which would also stall other streams sharing that connection (not the server).
  std::unique_ptr<v1::SpeechService::Stub> OwnConnection() {
    grpc::ChannelArguments args;
    args.SetInt("vox.test.connection", ++connections_);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return v1::SpeechService::NewStub(grpc::CreateCustomChannel(
        server_->address(), grpc::InsecureChannelCredentials(), args));
  }
  std::unique_ptr<StalledStream> Open(const std::string& text) {
    auto s = std::make_unique<StalledStream>();
    v1::SynthesizeRequest request = SpeakRequest(text, v1::AUDIO_ENCODING_PCM16);
    s->stub = OwnConnection();
    s->reader = s->stub->Synthesize(&s->context, request);
    return s;
  }
  int connections_ = 0;
  bool WaitForPaused(int n) {
    const absl::Time end = absl::Now() + absl::Seconds(20);
    while (PausedStreams(server_->metrics()) < n) {
      if (absl::Now() > end) return false;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return true;
  }
};

TEST_P(PausedStreamTest, ASlowReaderDoesNotStopAnotherStreamOnTheSameEngine) {
  Start(/*max_paused_slots=*/2);
  std::unique_ptr<StalledStream> slow = Open("long");  // 30 s of audio, never read
  ASSERT_TRUE(WaitForPaused(1)) << "the unread stream was never paused";
  // Same engine, same worker: finishes while the slow one holds its slot, paused.
  auto fast_stub = OwnConnection();
  SynthesisResult fast = Synthesize(fast_stub.get(), SpeakRequest("hola", v1::AUDIO_ENCODING_PCM16));
  ASSERT_TRUE(fast.status.ok()) << fast.status.error_message();
  EXPECT_TRUE(fast.messages.back().has_summary());
  // The unread stream is (still, or again) paused holding its slot; it has not finished.
  EXPECT_TRUE(WaitForPaused(1));
  // The slow reader catches up: its stream resumes and completes.
  EXPECT_TRUE(slow->Drain().ok());
}

TEST_P(PausedStreamTest, BeyondMaxPausedSlotsTheLongestPausedStreamEnds) {
  Start(/*max_paused_slots=*/1);
  std::unique_ptr<StalledStream> first = Open("long");
  ASSERT_TRUE(WaitForPaused(1));
  std::unique_ptr<StalledStream> second = Open("long");
  // Both readers stall; two paused streams exceed max_paused_slots=1, so the one paused longest
  // ends (which one that is depends on when each transport window filled; the scheduler's own
  // tests pin the order with a fake clock). The other one finishes once its reader catches up.
  grpc::Status a = first->Drain();
  grpc::Status b = second->Drain();
  const grpc::Status& ended = a.ok() ? b : a;
  EXPECT_TRUE(a.ok() != b.ok()) << a.error_message() << " / " << b.error_message();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(ended.error_message(), HasSubstr("read too slowly"));
  EXPECT_THAT(ended.error_message(), HasSubstr("max_paused_slots=1"));
  EXPECT_THAT(ended.error_message(), HasSubstr("paused longest"));
  EXPECT_THAT(server_->metrics()->Scrape(),
              HasSubstr("vox_rejections_total{engine=\"fake-voice\",reason=\"too_many_paused\"} 1"));
}

INSTANTIATE_TEST_SUITE_P(WholeRequestAndStepper, PausedStreamTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Stepper" : "WholeRequest"; });

TEST_F(ServicesTest, SchedulerMetricsMoveWhenRequestsAreServed) {
  for (int i = 0; i < 3; ++i) {
    v1::TranslateResponse r;
    ASSERT_TRUE(Call(Request({"abc", "de"}), &r).ok());
  }
  ASSERT_TRUE(Synthesize(speech_.get(), SpeakRequest("hola", v1::AUDIO_ENCODING_OPUS)).status.ok());
  const std::string text = server_->metrics()->Scrape();
  // Warm-up ran before the metrics were attached: these are the calls above.
  EXPECT_THAT(text, HasSubstr("vox_queue_wait_seconds_count{engine=\"fake-a\",stage=\"translate\"} 6"));
  EXPECT_THAT(text, HasSubstr("vox_batch_size_sum{engine=\"fake-a\",stage=\"translate\"} 6"));
  EXPECT_THAT(text, HasSubstr("vox_queue_wait_seconds_count{engine=\"fake-voice\",stage=\"synthesize\"} 1"));
  EXPECT_THAT(text, HasSubstr("vox_batch_size_count{engine=\"fake-voice\",stage=\"synthesize\"}"));
  EXPECT_THAT(text, HasSubstr("vox_queue_depth{engine=\"fake-a\",stage=\"translate\"} 0"));
}

}  // namespace
}  // namespace vox
