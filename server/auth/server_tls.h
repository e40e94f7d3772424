#ifndef VOX_SERVER_AUTH_SERVER_TLS_H_
#define VOX_SERVER_AUTH_SERVER_TLS_H_

#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/auth/tls_files.h"

namespace grpc::experimental {
class FileWatcherCertificateProvider;
}

namespace vox {

// voxd's TLS server credentials, reloadable while serving. Owns a private directory (mode 0700,
// removed by the destructor) holding a checked copy of the files, which gRPC watches; Reload()
// checks the configured files again (certificate and key parse and match, CA parses) and, only if
// they are good, swaps the copy in one rename. New handshakes use it within about a second;
// established connections and their streams are untouched. Thread-safe.
class ServerTls {
 public:
  // INVALID_ARGUMENT naming the file when one is missing, unreadable or not what it should be.
  static absl::StatusOr<std::unique_ptr<ServerTls>> Create(const TlsFiles& files);
  ~ServerTls();

  // For grpc::ServerBuilder::AddListeningPort. Call once.
  std::shared_ptr<grpc::ServerCredentials> credentials();

  // Re-reads the configured files (SIGHUP). On error the serving copy stays as it was.
  absl::Status Reload();

  // How many successful loads (the initial one included); for tests and logs.
  int generation() const;

 private:
  ServerTls(TlsFiles files, std::string dir);
  absl::Status Publish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TlsFiles files_;
  const std::string dir_;  // private staging directory: gen-N/ and the symlink current -> gen-N
  mutable absl::Mutex mu_;
  int generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<grpc::experimental::FileWatcherCertificateProvider> provider_;
};

// Checks that `files` hold a PEM certificate chain, the matching private key and (when named) at
// least one CA certificate. INVALID_ARGUMENT naming the file and what is wrong.
absl::Status CheckTlsFiles(const TlsFiles& files);

}  // namespace vox

#endif  // VOX_SERVER_AUTH_SERVER_TLS_H_
