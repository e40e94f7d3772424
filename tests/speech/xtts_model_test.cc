// LoadXttsModel's vocoder_dtype: which of the vocoder's parameters it holds in bfloat16. From
// exporter version 8 the upsampling convolutions are ordinary ones and convert with the rest.
#include "engines/speech/xtts_model.h"

#include <string>

#include "engines/core/engine_options.h"
#include "engines/core/manifest.h"
#include "engines/torch/device.h"
#include "gtest/gtest.h"

namespace vox {
namespace {

const std::string kModel = std::string(VOX_TINY_DIR) + "/models/xtts-tiny";

// The dtypes of the vocoder's parameters, counted: {float32, bfloat16, other}.
struct Dtypes {
  int float32 = 0, bfloat16 = 0, other = 0;
};
Dtypes VocoderDtypes(const XttsModel& model) {
  Dtypes d;
  const torch::jit::Module decoder =
      model.module->attr("hifigan_decoder").toModule().attr("waveform_decoder").toModule();
  for (const auto& p : decoder.named_parameters(/*recurse=*/true)) {
    const auto t = p.value.scalar_type();
    (t == torch::kFloat ? d.float32 : t == torch::kBFloat16 ? d.bfloat16 : d.other) += 1;
  }
  return d;
}

absl::StatusOr<std::shared_ptr<const XttsModel>> Load(const std::string& vocoder_dtype) {
  auto manifest = LoadManifest(kModel, /*verify_checksums=*/false);
  if (!manifest.ok()) return manifest.status();
  EngineOptions o;
  o.device = "cpu";
  o.vocoder_dtype = vocoder_dtype;
  return LoadXttsModel("xtts-tiny", *std::move(manifest), o, /*freeze_module=*/false);
}

TEST(XttsModelVocoderTest, Float32KeepsEveryVocoderParameterFloat32) {
  auto model = Load("float32");
  ASSERT_TRUE(model.ok()) << model.status();
  const Dtypes d = VocoderDtypes(**model);
  EXPECT_GT(d.float32, 0);
  EXPECT_EQ(d.bfloat16, 0);
  EXPECT_EQ(d.other, 0);
}

TEST(XttsModelVocoderTest, BFloat16HoldsEveryVocoderParameterIncludingTheUpsamplingOnes) {
  auto model = Load("bfloat16");
  if (!CpuHasNativeBFloat16()) {  // refused (XttsEngineVocoderTest checks the message)
    EXPECT_FALSE(model.ok());
    return;
  }
  ASSERT_TRUE(model.ok()) << model.status();
  const Dtypes d = VocoderDtypes(**model);
  EXPECT_GT(d.bfloat16, 0);
  EXPECT_EQ(d.float32, 0) << "some vocoder parameters (the upsampling convolutions?) stayed float32";
  EXPECT_EQ(d.other, 0);
}

}  // namespace
}  // namespace vox
