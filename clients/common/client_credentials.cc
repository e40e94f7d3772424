#include "clients/common/client_credentials.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vox {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

const char kClientSecurityUsage[] =
    "  --tls                    connect with TLS, trusting the system's roots\n"
    "  --tls-ca FILE            PEM roots to trust instead (implies --tls)\n"
    "  --tls-cert FILE          client certificate for mutual TLS (with --tls-key)\n"
    "  --tls-key FILE           its private key\n"
    "  --tls-server-name NAME   name to verify in the server's certificate (default: the host)\n"
    "  --token-file FILE        bearer token, read from FILE (or the VOX_TOKEN environment\n"
    "                           variable); needs TLS\n";

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const ClientSecurity& s) {
  std::string token;
  if (!s.token_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(s.token_file, "--token-file");
    if (!text.ok()) return text.status();
    token = std::string(absl::StripAsciiWhitespace(*text));
    if (token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--token-file: ", s.token_file, " is empty"));
    }
  } else if (const char* env = std::getenv("VOX_TOKEN"); env != nullptr && *env != '\0') {
    token = std::string(absl::StripAsciiWhitespace(env));
  }
  const bool tls = s.tls || !s.ca_file.empty() || !s.cert_file.empty() || !s.key_file.empty() ||
                   !s.server_name.empty();
  if (!tls) {
    if (!token.empty()) {
      return absl::InvalidArgumentError(
          "a bearer token (--token-file or VOX_TOKEN) needs TLS: add --tls or --tls-ca FILE");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (s.cert_file.empty() != s.key_file.empty()) {
    return absl::InvalidArgumentError("mutual TLS needs both --tls-cert and --tls-key");
  }
  grpc::SslCredentialsOptions options;
  if (!s.ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(s.ca_file, "--tls-ca");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = std::move(*ca);
  }
  if (!s.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(s.cert_file, "--tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(s.key_file, "--tls-key");
    if (!key.ok()) return key.status();
    options.pem_cert_chain = std::move(*cert);
    options.pem_private_key = std::move(*key);
  }
  std::shared_ptr<grpc::ChannelCredentials> channel = grpc::SslCredentials(options);
  if (token.empty()) return channel;
  return grpc::CompositeChannelCredentials(channel, grpc::AccessTokenCredentials(token));
}

void AddSecurityChannelArgs(const ClientSecurity& s, grpc::ChannelArguments* args) {
  if (!s.server_name.empty()) args->SetSslTargetNameOverride(s.server_name);
}

bool ParseClientSecurityFlag(const std::vector<std::string>& args, size_t* i, ClientSecurity* s,
                             std::string* error) {
  const std::string& arg = args[*i];
  if (arg == "--tls") {
    s->tls = true;
    return true;
  }
  const std::pair<const char*, std::string*> flags[] = {{"--tls-ca", &s->ca_file},
                                                        {"--tls-cert", &s->cert_file},
                                                        {"--tls-key", &s->key_file},
                                                        {"--tls-server-name", &s->server_name},
                                                        {"--token-file", &s->token_file}};
  for (const auto& [flag, field] : flags) {
    if (arg == flag) {
      if (*i + 1 >= args.size()) {
        *error = absl::StrCat(flag, " needs a value");
        return true;
      }
      *field = args[++*i];
      return true;
    }
    if (absl::StartsWith(arg, absl::StrCat(flag, "="))) {
      *field = arg.substr(std::string(flag).size() + 1);
      return true;
    }
  }
  return false;
}

}  // namespace vox
