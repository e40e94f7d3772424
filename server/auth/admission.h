#ifndef VOX_SERVER_AUTH_ADMISSION_H_
#define VOX_SERVER_AUTH_ADMISSION_H_

#include <atomic>
#include <cstdint>
#include <string>

#include <grpcpp/server_context.h>

#include "absl/status/status.h"

namespace vox {

class DailyCharacters;
class IdleStreams;

// The one place a vox.v1 handler asks whether its call may go on: not while the server drains
// (UNAVAILABLE), not when the admission interceptor found it over a quota as it arrived
// (RESOURCE_EXHAUSTED), its text only within its token's characters per day, and a client
// stream not past the idle-stream timeout (idle_streams()). One per server, shared by its
// services. Thread-safe.
class Admission {
 public:
  // `characters` and `idle` may be null (no daily budgets, no idle timeout); not owned, they
  // must outlive this.
  explicit Admission(DailyCharacters* characters = nullptr, IdleStreams* idle = nullptr)
      : characters_(characters), idle_(idle) {}

  // SIGTERM: from now on Admit refuses every call.
  void BeginDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

  // At a call's start, before anything else: OK, UNAVAILABLE (ShuttingDown) while draining, or
  // the RESOURCE_EXHAUSTED a quota gave the call.
  absl::Status Admit(const grpc::ServerContextBase& context) const;

  // `characters` of text (code points) the call of `token` (its name, "" = none) sends: counted,
  // or refused with RESOURCE_EXHAUSTED and not counted.
  absl::Status Charge(const std::string& token, int64_t characters) const;

  // Where client streams register for the idle-stream timeout; null = none.
  IdleStreams* idle_streams() const { return idle_; }

  // The drain's refusal of new work.
  static absl::Status ShuttingDown();

 private:
  DailyCharacters* const characters_;
  IdleStreams* const idle_;
  std::atomic<bool> draining_{false};
};

}  // namespace vox

#endif  // VOX_SERVER_AUTH_ADMISSION_H_
