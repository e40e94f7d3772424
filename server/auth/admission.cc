#include "server/auth/admission.h"

#include "absl/strings/string_view.h"
#include "server/auth/admission_interceptor.h"
#include "server/auth/daily_characters.h"

namespace vox {

absl::Status Admission::Admit(const grpc::ServerContextBase& context) const {
  if (draining()) return ShuttingDown();
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(kRefusalKey);
  if (it == metadata.end()) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::string_view(it->second.data(), it->second.size()));
}

absl::Status Admission::Charge(const std::string& token, int64_t characters) const {
  return characters_ == nullptr ? absl::OkStatus() : characters_->Charge(token, characters);
}

absl::Status Admission::ShuttingDown() {
  return absl::UnavailableError("the server is shutting down; retry on another server");
}

}  // namespace vox
