#ifndef VOX_TESTS_AUTH_TEST_CERTS_H_
#define VOX_TESTS_AUTH_TEST_CERTS_H_

// Certificates for the TLS tests, made with the openssl command at run time (P-256 keys, valid
// two days): a CA, and leaf certificates it signs for 127.0.0.1/localhost or for a client.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace vox::testing {

struct CertFiles {
  std::string cert, key;
};

inline bool RunShell(const std::string& command) {
  const int rc = std::system((command + " >/dev/null 2>&1").c_str());
  EXPECT_EQ(rc, 0) << command;
  return rc == 0;
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A self-signed CA named `name` in `dir` (dir/name.pem, dir/name.key).
inline CertFiles MakeCa(const std::string& dir, const std::string& name) {
  std::filesystem::create_directories(dir);
  const std::string base = absl::StrCat(dir, "/", name);
  RunShell(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                        "-nodes -days 2 -subj /CN=", name, " -keyout ", base, ".key -out ", base,
                        ".pem"));
  return {base + ".pem", base + ".key"};
}

// A certificate for `name` signed by `ca`, valid for localhost and 127.0.0.1 (a server's) and
// for client authentication too.
inline CertFiles MakeLeaf(const std::string& dir, const std::string& name, const CertFiles& ca) {
  const std::string base = absl::StrCat(dir, "/", name);
  {
    std::ofstream ext(base + ".ext");
    ext << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
           "extendedKeyUsage=serverAuth,clientAuth\n";
  }
  RunShell(absl::StrCat("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                        "-subj /CN=", name, " -keyout ", base, ".key -out ", base, ".csr"));
  RunShell(absl::StrCat("openssl x509 -req -days 2 -in ", base, ".csr -CA ", ca.cert, " -CAkey ",
                        ca.key, " -CAcreateserial -extfile ", base, ".ext -out ", base, ".pem"));
  return {base + ".pem", base + ".key"};
}

}  // namespace vox::testing

#endif  // VOX_TESTS_AUTH_TEST_CERTS_H_
