#ifndef VOX_TESTS_VOXBENCH_CHILD_PROCESS_H_
#define VOX_TESTS_VOXBENCH_CHILD_PROCESS_H_

// A child process for voxbench's integration tests (voxd, voxbench itself): stdout on a pipe,
// stderr into a file. Not thread-safe; one test thread drives it. The destructor kills and
// reaps a child still running.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace vox::testing {

class BenchChild {
 public:
  BenchChild() = default;
  BenchChild(const BenchChild&) = delete;
  BenchChild& operator=(const BenchChild&) = delete;
  ~BenchChild() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
  }

  // Starts argv[0]; returns an empty string or what went wrong.
  std::string Start(const std::vector<std::string>& argv, const std::string& stderr_path) {
    stderr_path_ = stderr_path;
    int fds[2];
    if (::pipe(fds) != 0) return "pipe failed";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_fd_ = fds[0];
    if (rc != 0) {
      pid_ = -1;
      return std::string("cannot start ") + argv[0] + ": " + std::strerror(rc);
    }
    return "";
  }

  // The next stdout line, or false when stdout closed or `timeout_ms` passed.
  bool ReadLine(int timeout_ms, std::string* line) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      const size_t nl = out_.find('\n');
      if (nl != std::string::npos) {
        *line = out_.substr(0, nl);
        out_.erase(0, nl + 1);
        return true;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) return false;
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(out_fd_, buf, sizeof(buf));
      if (n <= 0) return false;
      out_.append(buf, static_cast<size_t>(n));
    }
  }

  // Reads stdout to its end while waiting up to `timeout_ms` for the exit. Returns the exit
  // code, 128 + signal when killed by one, or -1 on timeout (the child is then killed).
  int WaitForExit(int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (pid_ > 0) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) {
        char buf[4096];
        const ssize_t n = ::read(out_fd_, buf, sizeof(buf));
        if (n > 0) out_.append(buf, static_cast<size_t>(n));
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        char buf[4096];
        ssize_t n;
        while ((n = ::read(out_fd_, buf, sizeof(buf))) > 0) out_.append(buf, static_cast<size_t>(n));
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
        return -1;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return -1;
      }
    }
    return -1;
  }

  // Everything read from stdout and not yet returned by ReadLine.
  const std::string& Stdout() const { return out_; }

  std::string Stderr() const {
    std::ifstream in(stderr_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string out_;
  std::string stderr_path_;
};

}  // namespace vox::testing

#endif  // VOX_TESTS_VOXBENCH_CHILD_PROCESS_H_
