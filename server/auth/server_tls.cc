#include "server/auth/server_tls.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"

namespace vox {
namespace {

// The copy gRPC reads is checked every second.
constexpr unsigned kRefreshSeconds = 1;

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS ", what, " file ", path, ": cannot read it (", std::strerror(errno),
                     ")"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no PEM block found";
  char text[256];
  ERR_error_string_n(e, text, sizeof(text));
  return text;
}

struct Pem {
  std::string cert, key, ca;
};

absl::StatusOr<Pem> LoadChecked(const TlsFiles& files) {
  Pem pem;
  absl::StatusOr<std::string> cert = ReadFile(files.cert_file, "certificate");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(files.key_file, "key");
  if (!key.ok()) return key.status();
  pem.cert = std::move(*cert);
  pem.key = std::move(*key);
  ERR_clear_error();
  BIO* cert_bio = BIO_new_mem_buf(pem.cert.data(), static_cast<int>(pem.cert.size()));
  X509* x509 = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  BIO_free(cert_bio);
  if (x509 == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("TLS certificate file ", files.cert_file,
                                                   ": not a PEM certificate (", OpenSslError(),
                                                   ")"));
  }
  BIO* key_bio = BIO_new_mem_buf(pem.key.data(), static_cast<int>(pem.key.size()));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  absl::Status status;
  if (pkey == nullptr) {
    status = absl::InvalidArgumentError(absl::StrCat(
        "TLS key file ", files.key_file, ": not an unencrypted PEM private key (", OpenSslError(),
        ")"));
  } else if (X509_check_private_key(x509, pkey) != 1) {
    ERR_clear_error();
    status = absl::InvalidArgumentError(absl::StrCat("TLS key file ", files.key_file,
                                                     " does not match the certificate in ",
                                                     files.cert_file));
  }
  EVP_PKEY_free(pkey);
  X509_free(x509);
  if (!status.ok()) return status;
  if (!files.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(files.client_ca_file, "client CA");
    if (!ca.ok()) return ca.status();
    pem.ca = std::move(*ca);
    BIO* ca_bio = BIO_new_mem_buf(pem.ca.data(), static_cast<int>(pem.ca.size()));
    X509* ca_cert = PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr);
    BIO_free(ca_bio);
    if (ca_cert == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("TLS client CA file ", files.client_ca_file,
                                                     ": not a PEM certificate (", OpenSslError(),
                                                     ")"));
    }
    X509_free(ca_cert);
  }
  return pem;
}

absl::Status WriteSecret(const std::string& path, const std::string& data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return absl::OkStatus();
}

void RemoveTree(const std::string& path) {
  if (DIR* dir = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(dir)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      const std::string child = path + "/" + name;
      struct stat st;
      if (::lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        RemoveTree(child);
      } else {
        ::unlink(child.c_str());
      }
    }
    ::closedir(dir);
  }
  ::rmdir(path.c_str());
}

}  // namespace

absl::Status CheckTlsFiles(const TlsFiles& files) { return LoadChecked(files).status(); }

ServerTls::ServerTls(TlsFiles files, std::string dir)
    : files_(std::move(files)), dir_(std::move(dir)) {}

absl::StatusOr<std::unique_ptr<ServerTls>> ServerTls::Create(const TlsFiles& files) {
  if (files.cert_file.empty() || files.key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both tls.cert_file and tls.key_file (--tls-cert, --tls-key)");
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                                     "/voxd-tls-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot make a private directory for TLS files (",
                                            pattern, "): ", std::strerror(errno)));
  }
  std::unique_ptr<ServerTls> tls(new ServerTls(files, pattern));
  absl::MutexLock lock(&tls->mu_);
  if (absl::Status s = tls->Publish(); !s.ok()) return s;
  const std::string current = tls->dir_ + "/current/";
  tls->provider_ = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      current + "key.pem", current + "cert.pem",
      files.client_ca_file.empty() ? "" : current + "ca.pem", kRefreshSeconds);
  return tls;
}

ServerTls::~ServerTls() {
  provider_.reset();
  RemoveTree(dir_);
}

std::shared_ptr<grpc::ServerCredentials> ServerTls::credentials() {
  grpc::experimental::TlsServerCredentialsOptions options(provider_);
  options.watch_identity_key_cert_pairs();
  if (!files_.client_ca_file.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

absl::Status ServerTls::Reload() {
  absl::MutexLock lock(&mu_);
  return Publish();
}

int ServerTls::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

// Writes gen-N/ and points current at it with one rename, so gRPC never reads a key from one
// generation and a certificate from another; keeps the previous generation for a reader still in
// it and removes the one before.
absl::Status ServerTls::Publish() {
  absl::StatusOr<Pem> pem = LoadChecked(files_);
  if (!pem.ok()) return pem.status();
  const int next = generation_ + 1;
  const std::string gen = absl::StrCat("gen-", next);
  const std::string gen_dir = absl::StrCat(dir_, "/", gen);
  if (::mkdir(gen_dir.c_str(), 0700) != 0) {
    return absl::InternalError(absl::StrCat("cannot make ", gen_dir, ": ", std::strerror(errno)));
  }
  std::vector<std::pair<std::string, const std::string*>> parts = {{"cert.pem", &pem->cert},
                                                                   {"key.pem", &pem->key}};
  if (!files_.client_ca_file.empty()) parts.push_back({"ca.pem", &pem->ca});
  for (const auto& [name, data] : parts) {
    if (absl::Status s = WriteSecret(gen_dir + "/" + name, *data); !s.ok()) {
      RemoveTree(gen_dir);
      return s;
    }
  }
  const std::string link = dir_ + "/current.new";
  ::unlink(link.c_str());
  if (::symlink(gen.c_str(), link.c_str()) != 0 ||
      ::rename(link.c_str(), (dir_ + "/current").c_str()) != 0) {
    const std::string error = std::strerror(errno);
    RemoveTree(gen_dir);
    return absl::InternalError(absl::StrCat("cannot switch TLS files in ", dir_, ": ", error));
  }
  if (next > 2) RemoveTree(absl::StrCat(dir_, "/gen-", next - 2));
  generation_ = next;
  return absl::OkStatus();
}

}  // namespace vox
