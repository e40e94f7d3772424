// NllbModel's forced decoder start (Fill): fill_slots where the export has it, decode_slots on
// exports older than version 6. Both must leave caches that give the same next step; fill_slots
// must be the one used, and must skip work (it has no output projection).
#include "engines/translate/nllb_model.h"

#include <ATen/record_function.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engines/core/engine_options.h"
#include "engines/translate/nllb_manifest.h"
#include "gtest/gtest.h"
#include "tests/translate/test_util.h"

namespace vox {
namespace {

std::unique_ptr<NllbModel> LoadTiny() {
  auto manifest = LoadNllbManifest(testing::TinyModelDir(), /*verify_checksums=*/false);
  EXPECT_TRUE(manifest.ok()) << manifest.status();
  EngineOptions options;
  options.device = testing::TestDevice();
  auto model = NllbModel::Load("nllb-tiny", *std::move(manifest), options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

// Operators dispatched on this thread while `fn` runs.
template <typename Fn>
int64_t CountOperators(Fn fn) {
  static std::atomic<int64_t> count{0};
  count = 0;
  at::CallbackHandle handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback([](const at::RecordFunction&) -> std::unique_ptr<at::ObserverContext> {
        ++count;
        return nullptr;
      }).scopes({at::RecordScope::FUNCTION}));
  fn();
  at::removeCallback(handle);
  return count;
}

struct Started {
  NllbModel::Slots slots;
  int64_t fill_operators = 0;
  torch::Tensor next;  // the logits of the step after the decoder start
};

// Encodes two texts, runs Fill (the decoder start) and one Step (the target language).
Started Start(const NllbModel& model) {
  auto src = model.Language("eng_Latn", "source language");
  auto target = model.Language("fra_Latn", "target language");
  EXPECT_TRUE(src.ok() && target.ok());
  auto sources = model.PrepareSources({"Hello world.", "A longer sentence, to be translated."}, *src);
  EXPECT_TRUE(sources.ok()) << sources.status();
  Started s;
  NllbModel::Encoded encoded = model.Encode(*sources);
  const int64_t width = encoded.mask.size(1);
  NllbModel::AdoptSources(s.slots, std::move(encoded));
  model.Reserve(s.slots, 2, 8, width);
  s.fill_operators = CountOperators([&] {
    model.Fill(s.slots, {model.decoder_start, model.decoder_start}, {0, 0}, width, 0, {});
  });
  s.next = model.Step(s.slots, {*target, *target}, {1, 1}, width, 0, {});
  return s;
}

TEST(NllbModelTest, DecoderStartUsesFillSlotsAndMatchesDecodeSlots) {
  std::unique_ptr<NllbModel> model = LoadTiny();
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(model->has_fill_slots) << "the tiny export predates exporter version 6";
  const Started fill = Start(*model);
  model->has_fill_slots = false;  // what Load finds on an export older than version 6
  const Started fallback = Start(*model);

  for (size_t i = 0; i < fill.slots.self_kv.size(); ++i) {
    EXPECT_TRUE(torch::equal(fill.slots.self_kv[i].narrow(2, 0, 2), fallback.slots.self_kv[i].narrow(2, 0, 2)))
        << "self cache " << i;
  }
  EXPECT_TRUE(torch::equal(fill.next, fallback.next));
  // Nothing else tells the two apart: fill_slots skips the output projection and the last
  // layer's work after its cache write.
  EXPECT_GT(fallback.fill_operators, 0);
  EXPECT_LT(fill.fill_operators, fallback.fill_operators);
}

}  // namespace
}  // namespace vox
