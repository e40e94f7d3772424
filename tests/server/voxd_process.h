#ifndef VOX_TESTS_SERVER_VOXD_PROCESS_H_
#define VOX_TESTS_SERVER_VOXD_PROCESS_H_

// Runs a real voxd (or any) binary as a child process for the integration tests: stdout on a
// pipe (to read "voxd listening on HOST:PORT"), stderr into a file the test can read.
// Not thread-safe; one test thread drives it.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

extern char** environ;

namespace vox::testing {

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  pid_t pid() const { return pid_; }

  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
  }

  // The child's environment: this process's, with `name` set to `value` (or removed when
  // `value` is null), on top of earlier SetEnv calls. Takes effect at the next Start.
  void SetEnv(const std::string& name, const char* value) {
    if (env_.empty()) {
      for (char** e = environ; *e != nullptr; ++e) env_.push_back(*e);
    }
    std::vector<std::string> env;
    for (const std::string& e : env_) {
      if (e.compare(0, name.size() + 1, name + "=") != 0) env.push_back(e);
    }
    if (value != nullptr) env.push_back(name + "=" + value);
    env_ = std::move(env);
  }

  // Starts `argv[0]` with `argv`; stderr goes to `stderr_path` (truncated).
  absl::Status Start(const std::vector<std::string>& argv, const std::string& stderr_path) {
    stderr_path_ = stderr_path;
    int out[2];
    if (::pipe(out) != 0) return absl::InternalError("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> env;
    for (const std::string& e : env_) env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(),
                                 env_.empty() ? environ : env.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    stdout_fd_ = out[0];
    if (rc != 0) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": ", std::strerror(rc)));
    }
    return absl::OkStatus();
  }

  // Reads stdout until a full line arrives, the process closes stdout, or `timeout` passes.
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      const size_t nl = stdout_.find('\n');
      if (nl != std::string::npos) {
        std::string line = stdout_.substr(0, nl);
        stdout_.erase(0, nl + 1);
        return line;
      }
      const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (ms <= 0) return absl::DeadlineExceededError("no line on stdout in time");
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(ms)) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
      if (n <= 0) {
        return absl::UnavailableError(absl::StrCat("stdout closed before a line; stderr:\n",
                                                   Stderr()));
      }
      stdout_.append(buf, static_cast<size_t>(n));
    }
  }

  // Everything left on stdout once the process has closed it.
  std::string RestOfStdout() {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(stdout_fd_, buf, sizeof(buf))) > 0) stdout_.append(buf, static_cast<size_t>(n));
    std::string rest = stdout_;
    stdout_.clear();
    return rest;
  }

  // Sends `signal` (unless 0) and waits up to `timeout` for the exit, reading stdout meanwhile
  // (a child that prints more than a pipe holds would otherwise never exit; RestOfStdout()
  // returns what was read). Returns the exit code, 128 + signal number when killed by a
  // signal, or DEADLINE_EXCEEDED (the child is then killed).
  absl::StatusOr<int> Wait(int signal, absl::Duration timeout) {
    if (pid_ <= 0) return absl::FailedPreconditionError("not running");
    if (signal != 0) ::kill(pid_, signal);
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, 10) > 0) {
        char buf[4096];
        const ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
        if (n > 0) stdout_.append(buf, static_cast<size_t>(n));
      }
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
        return absl::InternalError("unexpected wait status");
      }
      if (absl::Now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return absl::DeadlineExceededError("the process did not exit in time");
      }
    }
  }

  std::string Stderr() const {
    std::ifstream in(stderr_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string stdout_;
  std::string stderr_path_;
  std::vector<std::string> env_;  // empty: inherit environ
};

}  // namespace vox::testing

#endif  // VOX_TESTS_SERVER_VOXD_PROCESS_H_
