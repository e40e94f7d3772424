#include "server/call_log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "server/auth/admission_interceptor.h"

namespace vox {
namespace {

std::atomic<bool> g_access_log{true};

void WriteLine(const std::string& line) {
  // One write(2): concurrent lines do not interleave (stderr is unbuffered anyway).
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

bool PrintableId(grpc::string_ref id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

std::string NewRequestId() {
  static absl::Mutex mu(absl::kConstInit);
  static std::mt19937_64* rng ABSL_GUARDED_BY(mu) ABSL_PT_GUARDED_BY(mu) = nullptr;
  absl::MutexLock lock(&mu);
  if (rng == nullptr) {
    std::random_device rd;
    rng = new std::mt19937_64((static_cast<uint64_t>(rd()) << 32) ^ rd());
  }
  return absl::StrFormat("%016x", (*rng)());
}

std::string RequestIdFrom(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  auto it = metadata.find(kRequestIdKey);
  if (it != metadata.end() && PrintableId(it->second)) {
    return std::string(it->second.data(), it->second.size());
  }
  return NewRequestId();
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Time DeadlineOf(const grpc::ServerContextBase& context) {
  const auto deadline = context.deadline();
  // gRPC reports "no deadline" as a time centuries away.
  if (deadline >= std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 50)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

void SetAccessLogEnabled(bool enabled) { g_access_log.store(enabled); }

std::string TokenNameOf(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(kTokenNameKey);
  return it == metadata.end() ? "" : std::string(it->second.data(), it->second.size());
}

void LogCall(const std::string& method, const grpc::Status& status, absl::Duration duration,
             const std::string& request_id, const std::string& token) {
  if (!g_access_log.load(std::memory_order_relaxed)) return;
  std::string line = absl::StrFormat(
      "voxd: rpc=%s status=%s duration_ms=%.3f request_id=%s", method,
      absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
      absl::ToDoubleMilliseconds(duration), request_id);
  if (!token.empty()) absl::StrAppend(&line, " token=", token);
  if (!status.ok()) absl::StrAppend(&line, " message=\"", status.error_message(), "\"");
  line += '\n';
  WriteLine(line);
}

void LogError(const std::string& request_id, const std::string& what) {
  WriteLine(absl::StrCat("voxd: request ", request_id, ": ", what, "\n"));
}

bool ClientVisibleCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
      return true;
    default:
      return false;
  }
}

}  // namespace vox
