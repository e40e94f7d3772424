#ifndef VOX_BENCH_VOXBENCH_REPORT_H_
#define VOX_BENCH_VOXBENCH_REPORT_H_

// voxbench's reports from a finished run.
//
// JSON (--format json) follows ghz's JSON report (bojand/ghz, www/docs/output.md and its sample
// www/website/static/pretty.json; field types from ghz's Report struct): date (RFC 3339),
// endReason, options, count, total, average, fastest, slowest (nanoseconds, integers), rps,
// errorDistribution ({"rpc error: code = X desc = M": n}), statusCodeDistribution
// ({"OK": n, "Unavailable": n}: ghz's Go status names), latencyDistribution (integer
// percentages 10, 25, 50, 75, 90, 95, 99 as ghz; latency in ns), histogram (mark in seconds,
// count, frequency), details (timestamp, latency, error, status). ghz's own percentile and
// histogram methods differ in detail; voxbench uses the definitions in latency_stats.h.
//
// Added fields (ignored by ghz tooling): "latencyStats" (count, average, fastest, slowest,
// percentiles p50/p90/p99/p99.9 as {percentage, latency}), "latencyByStatus" (the same per ghz
// status name: how fast RESOURCE_EXHAUSTED answers come, what admitted calls took), for calls
// with audio (synthesize, speech-translate, translate-synthesize) "timeToFirstAudio" and
// "audioGaps", for speech-translate and translate-synthesize also "segmentTimeToFirstAudio",
// "segmentLatency" and "segmentInterval" (same shape, nanoseconds), "segmentServerTimings"
// ({"queue"|"translation"|"synthesis": same shape}: what voxd reported), "audio" (messages, seconds,
// secondsPerSecond), and "voxbench" (the run's settings ghz has no field for).
//
// Pure functions of their inputs; thread-compatible.

#include <string>

#include "bench/voxbench/load_runner.h"
#include "bench/voxbench/options.h"
#include "nlohmann/json.hpp"

namespace vox::bench {

nlohmann::json MakeJsonReport(const BenchOptions& options, const RequestPlan& plan,
                              const RunResult& run);

// The human-readable summary (ghz's layout plus the streaming figures).
std::string MakeTextReport(const BenchOptions& options, const RunResult& run);

// One progress line, without line ending: "[3s] 120 done, 4 in flight, 2 errors, 40.0/s".
std::string ProgressLine(const ProgressSnapshot& progress);

}  // namespace vox::bench

#endif  // VOX_BENCH_VOXBENCH_REPORT_H_
