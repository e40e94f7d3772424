#ifndef VOX_SERVER_AUTH_TLS_FILES_H_
#define VOX_SERVER_AUTH_TLS_FILES_H_

#include <string>

namespace vox {

// Where voxd's TLS material lives (PEM files). Plain data. cert_file and key_file set = TLS on;
// client_ca_file set too = mutual TLS: every client must present a certificate that CA signed.
struct TlsFiles {
  std::string cert_file;       // server certificate chain
  std::string key_file;        // its private key (unencrypted PEM)
  std::string client_ca_file;  // "" = no client certificates asked for

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

}  // namespace vox

#endif  // VOX_SERVER_AUTH_TLS_FILES_H_
