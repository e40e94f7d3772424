#ifndef VOX_CLIENTS_COMMON_CLIENT_CREDENTIALS_H_
#define VOX_CLIENTS_COMMON_CLIENT_CREDENTIALS_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/security/credentials.h>

#include "absl/status/statusor.h"

namespace vox {

// How a vox client (voxctl, voxbench) reaches voxd: plaintext, TLS, mutual TLS, with or without a
// bearer token. Plain data, filled from the flags that ParseClientSecurityFlag takes.
struct ClientSecurity {
  bool tls = false;         // --tls (implied by any other TLS flag)
  std::string ca_file;      // --tls-ca: PEM roots to trust ("" = the system's)
  std::string cert_file;    // --tls-cert: client certificate, for mutual TLS
  std::string key_file;     // --tls-key: its key
  std::string server_name;  // --tls-server-name: the name to verify instead of the host
  std::string token_file;   // --token-file: a file holding the bearer token
};

// Channel credentials for `security`: a bearer token is read from token_file, else from the
// VOX_TOKEN environment variable (never from the command line, where `ps` shows it); a token
// needs TLS. INVALID_ARGUMENT naming the file or flag when something cannot be used.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const ClientSecurity& security);

// The channel arguments `security` needs (the TLS name override), to pass to CreateCustomChannel.
void AddSecurityChannelArgs(const ClientSecurity& security, grpc::ChannelArguments* args);

// If args[*i] is one of the flags above ("--flag value" or "--flag=value"), stores it, advances
// *i past its value and returns true; sets *error when the value is missing.
bool ParseClientSecurityFlag(const std::vector<std::string>& args, size_t* i,
                             ClientSecurity* security, std::string* error);

// The flags' help lines, for usage texts.
extern const char kClientSecurityUsage[];

}  // namespace vox

#endif  // VOX_CLIENTS_COMMON_CLIENT_CREDENTIALS_H_
