#include "bench/voxbench/report.h"

#include <algorithm>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/voxbench/latency_stats.h"

namespace vox::bench {
namespace {

// ghz's fixed list (its JSON field is an int, so 99.9 cannot appear there).
const std::vector<double> kGhzPercentages = {10, 25, 50, 75, 90, 95, 99};
// What voxbench adds: the tail.
const std::vector<double> kVoxPercentages = {50, 90, 99, 99.9};

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string ErrorKey(const CallResult& c) {
  // ghz's error text is Go's status error: "rpc error: code = Unavailable desc = ...".
  return absl::StrCat("rpc error: code = ", GhzStatusName(c.code), " desc = ", c.error_message);
}

nlohmann::json StatsJson(const DurationSummary& s) {
  nlohmann::json j;
  j["count"] = s.count;
  j["average"] = s.mean_nanos;
  j["fastest"] = s.min_nanos;
  j["slowest"] = s.max_nanos;
  nlohmann::json dist = nlohmann::json::array();
  for (const PercentileValue& p : s.percentiles) {
    dist.push_back({{"percentage", p.percentage}, {"latency", p.nanos}});
  }
  j["latencyDistribution"] = dist;
  return j;
}

struct Collected {
  DurationSamples latency, ttfa, gaps, segment_ttfa, segment_latency, segment_interval;
  std::map<std::string, DurationSamples> latency_by_status;  // ghz names
  std::map<std::string, DurationSamples> segment_server;     // by stage
  std::map<std::string, int64_t> status_codes;  // ghz names
  std::map<std::string, int64_t> errors;
  int64_t audio_messages = 0;
  double audio_seconds = 0;
  int64_t calls_without_audio = 0;  // OK streaming calls that produced no audio
};

Collected Collect(const BenchOptions& options, const RunResult& run) {
  Collected c;
  for (const CallResult& r : run.calls) {
    c.latency.Add(r.latency_nanos);
    c.latency_by_status[GhzStatusName(r.code)].Add(r.latency_nanos);
    ++c.status_codes[GhzStatusName(r.code)];
    if (r.code != grpc::StatusCode::OK) ++c.errors[ErrorKey(r)];
    if (r.time_to_first_audio_nanos >= 0) {
      c.ttfa.Add(r.time_to_first_audio_nanos);
    } else if (r.code == grpc::StatusCode::OK && options.call != CallKind::kTranslate) {
      ++c.calls_without_audio;
    }
    for (int64_t g : r.audio_gaps_nanos) c.gaps.Add(g);
    for (int64_t g : r.segment_time_to_first_audio_nanos) c.segment_ttfa.Add(g);
    for (int64_t g : r.segment_latency_nanos) c.segment_latency.Add(g);
    for (int64_t g : r.segment_interval_nanos) c.segment_interval.Add(g);
    for (const auto& [stage, values] : r.segment_server_nanos) {
      for (int64_t v : values) c.segment_server[stage].Add(v);
    }
    c.audio_messages += r.audio_messages;
    if (r.sample_rate_hz > 0) {
      c.audio_seconds += static_cast<double>(r.audio_samples) / r.sample_rate_hz;
    }
  }
  return c;
}

double Seconds(int64_t nanos) { return static_cast<double>(nanos) / 1e9; }

std::string Ms(int64_t nanos) { return absl::StrFormat("%.2f ms", static_cast<double>(nanos) / 1e6); }

}  // namespace

nlohmann::json MakeJsonReport(const BenchOptions& options, const RequestPlan& plan,
                              const RunResult& run) {
  const Collected c = Collect(options, run);
  const DurationSummary lat = Summarize(c.latency, kGhzPercentages);
  nlohmann::json j;
  j["date"] = Rfc3339(run.start);
  j["endReason"] = run.end_reason == EndReason::kNormal ? "normal" : "timeout";
  nlohmann::json opts;
  opts["call"] = CallMethodName(options.call);
  opts["host"] = options.server;
  opts["n"] = options.total;
  opts["c"] = options.concurrency;
  opts["timeout"] = absl::ToInt64Nanoseconds(options.deadline);
  opts["dialTimeout"] = absl::ToInt64Nanoseconds(options.connect_timeout);
  opts["data"] = nlohmann::json::parse(plan.data_json, nullptr, false);
  opts["insecure"] = true;
  opts["CPUs"] = static_cast<int>(std::thread::hardware_concurrency());
  j["options"] = opts;
  j["count"] = static_cast<int64_t>(run.calls.size());
  j["total"] = run.total_nanos;
  j["average"] = lat.mean_nanos;
  j["fastest"] = lat.min_nanos;
  j["slowest"] = lat.max_nanos;
  j["rps"] = run.total_nanos > 0 ? static_cast<double>(run.calls.size()) / Seconds(run.total_nanos)
                                 : 0.0;
  j["errorDistribution"] = nlohmann::json::object();
  for (const auto& [k, v] : c.errors) j["errorDistribution"][k] = v;
  j["statusCodeDistribution"] = nlohmann::json::object();
  for (const auto& [k, v] : c.status_codes) j["statusCodeDistribution"][k] = v;
  nlohmann::json dist = nlohmann::json::array();
  for (const PercentileValue& p : lat.percentiles) {
    dist.push_back({{"percentage", static_cast<int>(p.percentage)}, {"latency", p.nanos}});
  }
  j["latencyDistribution"] = dist;
  nlohmann::json hist = nlohmann::json::array();
  for (const HistogramBucket& b : lat.histogram) {
    hist.push_back({{"mark", Seconds(b.mark_nanos)}, {"count", b.count}, {"frequency", b.frequency}});
  }
  j["histogram"] = hist;
  nlohmann::json details = nlohmann::json::array();
  if (options.details) {
    for (const CallResult& r : run.calls) {
      details.push_back({{"timestamp", Rfc3339(r.timestamp)},
                         {"latency", r.latency_nanos},
                         {"error", r.code == grpc::StatusCode::OK ? "" : ErrorKey(r)},
                         {"status", GhzStatusName(r.code)}});
    }
  }
  j["details"] = details;

  // voxbench's additions.
  j["latencyStats"] = StatsJson(Summarize(c.latency, kVoxPercentages, 0));
  j["latencyByStatus"] = nlohmann::json::object();
  for (const auto& [k, v] : c.latency_by_status) {
    j["latencyByStatus"][k] = StatsJson(Summarize(v, kVoxPercentages, 0));
  }
  if (options.call != CallKind::kTranslate) {
    j["timeToFirstAudio"] = StatsJson(Summarize(c.ttfa, kVoxPercentages, 0));
    j["audioGaps"] = StatsJson(Summarize(c.gaps, kVoxPercentages, 0));
    j["audio"] = {{"messages", c.audio_messages},
                  {"seconds", c.audio_seconds},
                  {"secondsPerSecond",
                   run.total_nanos > 0 ? c.audio_seconds / Seconds(run.total_nanos) : 0.0},
                  {"okCallsWithoutAudio", c.calls_without_audio}};
  }
  if (IsSegmentedCall(options.call)) {
    j["segmentTimeToFirstAudio"] = StatsJson(Summarize(c.segment_ttfa, kVoxPercentages, 0));
    j["segmentLatency"] = StatsJson(Summarize(c.segment_latency, kVoxPercentages, 0));
    j["segmentInterval"] = StatsJson(Summarize(c.segment_interval, kVoxPercentages, 0));
    j["segmentServerTimings"] = nlohmann::json::object();
    for (const auto& [stage, v] : c.segment_server) {
      j["segmentServerTimings"][stage] = StatsJson(Summarize(v, kVoxPercentages, 0));
    }
  }
  j["voxbench"] = {{"call", CallKindName(options.call)},
                   {"concurrency", options.concurrency},
                   {"total", options.total},
                   {"duration", absl::ToInt64Nanoseconds(options.duration)},
                   {"rate", options.rate},
                   {"deadline", absl::ToInt64Nanoseconds(options.deadline)},
                   {"connected", run.connected}};
  return j;
}

namespace {

void AppendStats(const std::string& title, const DurationSamples& samples, std::string* out) {
  const DurationSummary s = Summarize(samples, kVoxPercentages, 0);
  if (s.count == 0) {
    absl::StrAppend(out, "\n", title, ": none\n");
    return;
  }
  absl::StrAppend(out, "\n", title, " (", s.count, "):\n");
  absl::StrAppend(out, "  min ", Ms(s.min_nanos), ", mean ", Ms(s.mean_nanos), ", max ",
                  Ms(s.max_nanos), "\n");
  for (const PercentileValue& p : s.percentiles) {
    absl::StrAppend(out, absl::StrFormat("  p%-5g %s\n", p.percentage, Ms(p.nanos)));
  }
}

}  // namespace

std::string MakeTextReport(const BenchOptions& options, const RunResult& run) {
  const Collected c = Collect(options, run);
  const DurationSummary lat = Summarize(c.latency, kVoxPercentages);
  std::string out;
  absl::StrAppend(&out, "Summary:\n");
  absl::StrAppend(&out, "  Call:         ", CallMethodName(options.call), " on ", options.server,
                  run.connected ? "" : " (not connected before the first call)", "\n");
  absl::StrAppend(&out, "  Count:        ", run.calls.size(), "\n");
  absl::StrAppend(&out, "  Total:        ", Ms(run.total_nanos), "\n");
  absl::StrAppend(&out, "  Slowest:      ", Ms(lat.max_nanos), "\n");
  absl::StrAppend(&out, "  Fastest:      ", Ms(lat.min_nanos), "\n");
  absl::StrAppend(&out, "  Average:      ", Ms(lat.mean_nanos), "\n");
  absl::StrAppend(&out, absl::StrFormat(
                            "  Requests/sec: %.2f\n",
                            run.total_nanos > 0 ? run.calls.size() / Seconds(run.total_nanos) : 0));
  if (!lat.histogram.empty()) {
    absl::StrAppend(&out, "\nResponse time histogram (ms, upper bound [count]):\n");
    int64_t most = 1;
    for (const HistogramBucket& b : lat.histogram) most = std::max(most, b.count);
    for (const HistogramBucket& b : lat.histogram) {
      const int bar = static_cast<int>(40 * b.count / most);
      absl::StrAppend(&out, absl::StrFormat("  %10.3f [%d]\t|%s\n", b.mark_nanos / 1e6, b.count,
                                            std::string(static_cast<size_t>(bar), '#')));
    }
  }
  absl::StrAppend(&out, "\nLatency distribution:\n");
  for (const PercentileValue& p : lat.percentiles) {
    absl::StrAppend(&out, absl::StrFormat("  p%-5g in %s\n", p.percentage, Ms(p.nanos)));
  }
  if (options.call != CallKind::kTranslate) {
    AppendStats("Time to first audio", c.ttfa, &out);
    AppendStats("Gaps between audio messages", c.gaps, &out);
    if (IsSegmentedCall(options.call)) {
      AppendStats("Segment time to first audio (from sending the segment)", c.segment_ttfa, &out);
      AppendStats("Segment latency (from sending the segment to its end)", c.segment_latency,
                  &out);
      AppendStats("Segment interval (what each segment added to its session's time)",
                  c.segment_interval, &out);
      for (const auto& [stage, v] : c.segment_server) {
        AppendStats("Segment " + stage + " as voxd reports it", v, &out);
      }
    }
    absl::StrAppend(&out, absl::StrFormat(
                              "\nAudio: %d messages, %.2f s of audio, %.2f s of audio per second\n",
                              c.audio_messages, c.audio_seconds,
                              run.total_nanos > 0 ? c.audio_seconds / Seconds(run.total_nanos) : 0));
    if (c.calls_without_audio > 0) {
      absl::StrAppend(&out, "  ", c.calls_without_audio, " OK calls produced no audio\n");
    }
  }
  absl::StrAppend(&out, "\nStatus code distribution:\n");
  std::map<std::string, int64_t> canonical;
  for (const CallResult& r : run.calls) ++canonical[StatusCodeName(r.code)];
  for (const auto& [k, v] : canonical) absl::StrAppend(&out, "  [", k, "]\t", v, " responses\n");
  if (c.latency_by_status.size() > 1) {
    std::map<std::string, DurationSamples> by_canonical;
    for (const CallResult& r : run.calls) by_canonical[StatusCodeName(r.code)].Add(r.latency_nanos);
    absl::StrAppend(&out, "\nLatency by status code:\n");
    for (const auto& [k, v] : by_canonical) {
      const DurationSummary s = Summarize(v, kVoxPercentages, 0);
      absl::StrAppend(&out, "  [", k, "]\t", s.count, " calls: min ", Ms(s.min_nanos), ", p50 ",
                      Ms(s.percentiles[0].nanos), ", p99 ", Ms(s.percentiles[2].nanos), ", max ",
                      Ms(s.max_nanos), "\n");
    }
  }
  if (!c.errors.empty()) {
    absl::StrAppend(&out, "\nError distribution:\n");
    for (const auto& [k, v] : c.errors) absl::StrAppend(&out, "  [", v, "]\t", k, "\n");
  }
  return out;
}

std::string ProgressLine(const ProgressSnapshot& p) {
  const double secs = absl::ToDoubleSeconds(p.elapsed);
  return absl::StrFormat("[%.0fs] %d done, %d in flight, %d errors, %.1f/s", secs, p.completed,
                         p.in_flight, p.errors, secs > 0 ? p.completed / secs : 0.0);
}

}  // namespace vox::bench
