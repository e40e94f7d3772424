#include "engines/audio/ogg_opus_writer.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/audio/audio_test_util.h"

namespace vox {
namespace {

using ::testing::HasSubstr;
using audio_test::ReadOgg;

uint32_t Le32(const std::string& b, size_t i) {
  uint32_t v = 0;
  for (int k = 3; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(b[i + k]);
  return v;
}

std::vector<OpusPacket> EncodeSpeech(int rate, int64_t samples, OpusEncoder** keep = nullptr) {
  static std::unique_ptr<OpusEncoder> enc;
  OpusEncoderOptions o;
  o.sample_rate_hz = rate;
  enc = *OpusEncoder::Create(o);
  std::vector<OpusPacket> packets;
  EXPECT_TRUE(enc->Encode(audio_test::SpeechLike(rate, samples), &packets).ok());
  if (keep) *keep = enc.get();
  return packets;
}

TEST(OggOpusWriterTest, HeaderPacketsFollowRfc7845) {
  const std::string head = MakeOpusHead(312, 22050);
  ASSERT_EQ(head.size(), 19u);
  EXPECT_EQ(head.substr(0, 8), "OpusHead");
  EXPECT_EQ(head[8], 1);   // version
  EXPECT_EQ(head[9], 1);   // channels
  EXPECT_EQ(static_cast<uint8_t>(head[10]) | (static_cast<uint8_t>(head[11]) << 8), 312);
  EXPECT_EQ(Le32(head, 12), 22050u);
  EXPECT_EQ(head[16], 0);  // gain
  EXPECT_EQ(head[17], 0);
  EXPECT_EQ(head[18], 0);  // mapping family
  const std::string tags = MakeOpusTags("vendor", {"A=b", "TITLE=x"});
  EXPECT_EQ(tags.substr(0, 8), "OpusTags");
  EXPECT_EQ(Le32(tags, 8), 6u);
  EXPECT_EQ(tags.substr(12, 6), "vendor");
  EXPECT_EQ(Le32(tags, 18), 2u);
  EXPECT_EQ(Le32(tags, 22), 3u);
  EXPECT_EQ(tags.substr(26, 3), "A=b");
  EXPECT_EQ(tags.size(), 26u + 3 + 4 + 7);
}

TEST(OggOpusWriterTest, PagesGranulesAndTrimmedEnd) {
  OpusEncoder* enc = nullptr;
  const int64_t n = 24000 + 333;
  std::vector<OpusPacket> packets = EncodeSpeech(24000, n, &enc);
  std::vector<OpusPacket> last;
  ASSERT_TRUE(enc->Flush(&last).ok());
  OggOpusWriterOptions o;
  o.serial = 0xC0FFEE;
  o.stream_sample_rate_hz = 24000;
  o.input_sample_rate_hz = 22050;
  o.pre_skip_48k = enc->pre_skip_48k();
  o.max_packets_per_page = 10;
  auto w = *OggOpusWriter::Create(o);
  std::string bytes;
  ASSERT_TRUE(w->WriteHeaders(&bytes).ok());
  EXPECT_EQ(w->pages_written(), 2);
  for (const auto& p : packets) ASSERT_TRUE(w->AddPacket(p, &bytes).ok());
  ASSERT_TRUE(w->Finish(last, n, &bytes).ok());

  const audio_test::OggFile file = ReadOgg(bytes);
  ASSERT_TRUE(file.ok) << file.error;
  ASSERT_GE(file.pages.size(), 3u);
  EXPECT_EQ(w->pages_written(), static_cast<int64_t>(file.pages.size()));
  // Page 0: BOS, OpusHead alone. Page 1: OpusTags alone. Both granule 0.
  EXPECT_TRUE(file.pages[0].bos);
  EXPECT_EQ(file.pages[0].packets_completed, 1);
  EXPECT_EQ(file.pages[0].granule, 0);
  EXPECT_EQ(file.pages[1].packets_completed, 1);
  EXPECT_EQ(file.pages[1].granule, 0);
  EXPECT_EQ(file.packets[0], MakeOpusHead(enc->pre_skip_48k(), 22050));
  EXPECT_EQ(file.packets[1].substr(0, 8), "OpusTags");
  int64_t prev = 0;
  for (size_t i = 0; i < file.pages.size(); ++i) {
    const auto& page = file.pages[i];
    EXPECT_EQ(page.serial, 0xC0FFEEu);
    EXPECT_EQ(page.sequence, static_cast<int64_t>(i));
    EXPECT_EQ(page.bos, i == 0);
    EXPECT_EQ(page.eos, i + 1 == file.pages.size());
    EXPECT_FALSE(page.continued);
    EXPECT_LE(page.packets_completed, 10);
    EXPECT_GE(page.granule, prev) << "page " << i;
    if (i >= 2 && i + 1 < file.pages.size()) {
      // Untrimmed audio page: 2 x 480 samples per packet so far, pre-skip included.
      EXPECT_EQ(page.granule % 960, 0);
    }
    prev = page.granule;
  }
  // The final granule is pre-skip + the real length at 48 kHz: exact end trimming.
  EXPECT_EQ(file.pages.back().granule, enc->pre_skip_48k() + 2 * n);
  // Every audio packet is there, in order.
  ASSERT_EQ(file.packets.size(), 2 + packets.size() + last.size());
  for (size_t k = 0; k < packets.size(); ++k) EXPECT_EQ(file.packets[2 + k], packets[k].data);
  EXPECT_EQ(file.packets.back(), last.back().data);
}

TEST(OggOpusWriterTest, FlushPageAndPageSizePolicy) {
  std::vector<OpusPacket> packets = EncodeSpeech(48000, 48000 / 50 * 7);
  ASSERT_EQ(packets.size(), 7u);
  OggOpusWriterOptions o;
  o.stream_sample_rate_hz = 48000;
  o.max_packets_per_page = 3;
  auto w = *OggOpusWriter::Create(o);
  std::string bytes;
  std::vector<int64_t> pages_after;
  for (const auto& p : packets) {
    ASSERT_TRUE(w->AddPacket(p, &bytes).ok());
    pages_after.push_back(w->pages_written());
  }
  // Headers (2 pages) with the first packet, then a page after every 3rd packet.
  EXPECT_EQ(pages_after, (std::vector<int64_t>{2, 2, 3, 3, 3, 4, 4}));
  EXPECT_EQ(w->last_page_granule(), 6 * 960);
  ASSERT_TRUE(w->FlushPage(&bytes).ok());
  EXPECT_EQ(w->pages_written(), 5);
  EXPECT_EQ(w->last_page_granule(), 7 * 960);
  ASSERT_TRUE(w->FlushPage(&bytes).ok());  // nothing pending: no empty page
  EXPECT_EQ(w->pages_written(), 5);
}

TEST(OggOpusWriterTest, RejectsBadFinishAndBadOptions) {
  OggOpusWriterOptions o;
  auto w = *OggOpusWriter::Create(o);
  std::string bytes;
  EXPECT_EQ(w->Finish({}, 0, &bytes).code(), absl::StatusCode::kFailedPrecondition);
  std::vector<OpusPacket> packets = EncodeSpeech(24000, 480 * 3);
  // Claims more samples than the packets hold.
  absl::Status s = w->Finish(packets, 480 * 10, &bytes);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("final granule"));
  // Claims so few that more than the last packet would be trimmed.
  EXPECT_EQ(w->Finish(packets, 10, &bytes).code(), absl::StatusCode::kFailedPrecondition);

  o.stream_sample_rate_hz = 44100;
  s = OggOpusWriter::Create(o).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("24000, 48000"));
  o = OggOpusWriterOptions();
  o.max_packets_per_page = 0;
  EXPECT_EQ(OggOpusWriter::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = OggOpusWriterOptions();
  o.pre_skip_48k = 70000;
  EXPECT_EQ(OggOpusWriter::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vox
