#include "engines/builtin/process_pipeline.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace vox {
namespace {

// Moves `fd` to a number >= 3 with FD_CLOEXEC so dup2 onto 0/1 in a child never collides with
// it (voxd may run with stdin closed, and then pipe() could hand out 0).
int LiftFd(int fd) {
  if (fd >= 3) return fd;
  const int lifted = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return lifted;
}

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

std::string DescribeWait(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return "stopped";
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProcessPipeline>> ProcessPipeline::Start(
    const std::vector<Stage>& stages) {
  if (stages.empty()) return absl::InvalidArgumentError("process pipeline has no stages");
  for (const Stage& stage : stages) {
    if (stage.empty()) return absl::InvalidArgumentError("process pipeline stage with no program");
  }
  std::unique_ptr<ProcessPipeline> pipeline(new ProcessPipeline());

  // Environment: ours, with LC_ALL=C.UTF-8 so the stages read and write UTF-8 whatever voxd's
  // locale is (the `apertium` script insists on a UTF-8 LC_CTYPE for the same reason).
  std::vector<std::string> env_storage;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "LC_ALL=")) env_storage.emplace_back(*e);
  }
  env_storage.emplace_back("LC_ALL=C.UTF-8");
  std::vector<char*> envp;
  for (auto& s : env_storage) envp.push_back(s.data());
  envp.push_back(nullptr);

  // First stage's stdin: a socket pair, so a write after the stage died gives EPIPE through
  // send(MSG_NOSIGNAL) instead of a SIGPIPE that would kill voxd.
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", std::strerror(errno)));
  }
  pipeline->input_fd_ = LiftFd(sv[0]);
  int next_stdin = LiftFd(sv[1]);
  shutdown(pipeline->input_fd_, SHUT_RD);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty_mask, default_signals;
  sigemptyset(&empty_mask);
  sigemptyset(&default_signals);
  sigaddset(&default_signals, SIGPIPE);
  sigaddset(&default_signals, SIGINT);
  sigaddset(&default_signals, SIGTERM);
  sigaddset(&default_signals, SIGHUP);
  posix_spawnattr_setsigmask(&attr, &empty_mask);
  posix_spawnattr_setsigdefault(&attr, &default_signals);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  absl::Status status;
  pid_t group = 0;
  for (size_t i = 0; i < stages.size(); ++i) {
    int stdout_read = -1, stdout_write = -1;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      status = absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
      break;
    }
    stdout_read = LiftFd(p[0]);
    stdout_write = LiftFd(p[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, next_stdin, 0);
    posix_spawn_file_actions_adddup2(&actions, stdout_write, 1);
    posix_spawnattr_setpgroup(&attr, group);  // 0 for the first stage: it leads a new group

    std::vector<char*> argv;
    std::vector<std::string> args = stages[i];
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    CloseFd(next_stdin);
    CloseFd(stdout_write);
    if (rc != 0) {
      CloseFd(stdout_read);
      status = absl::InternalError(absl::StrCat("cannot start '", stages[i][0], "' (stage ", i + 1,
                                                " of ", stages.size(), "): ", std::strerror(rc)));
      break;
    }
    if (group == 0) group = pid;
    pipeline->children_.push_back(Child{pid, stages[i][0]});
    next_stdin = stdout_read;
  }
  posix_spawnattr_destroy(&attr);
  if (!status.ok()) {
    CloseFd(next_stdin);
    return status;  // the destructor kills the stages already started
  }
  pipeline->output_fd_ = next_stdin;
  fcntl(pipeline->input_fd_, F_SETFL, fcntl(pipeline->input_fd_, F_GETFL) | O_NONBLOCK);
  fcntl(pipeline->output_fd_, F_SETFL, fcntl(pipeline->output_fd_, F_GETFL) | O_NONBLOCK);
  return pipeline;
}

ProcessPipeline::~ProcessPipeline() {
  CloseFd(input_fd_);
  CloseFd(output_fd_);
  KillAll();
}

void ProcessPipeline::KillAll() {
  for (Child& child : children_) {
    if (!child.reaped) kill(child.pid, SIGKILL);
  }
  for (Child& child : children_) {
    if (child.reaped) continue;
    while (waitpid(child.pid, &child.wait_status, 0) < 0 && errno == EINTR) {
    }
    child.reaped = true;
  }
}

std::optional<std::string> ProcessPipeline::FindExitedStage() {
  // Stages that exit 0 (EOF from upstream) or die of SIGPIPE (downstream gone) are consequences;
  // name the others, the likely cause, and count the consequences.
  std::vector<std::string> causes, consequences;
  for (size_t i = 0; i < children_.size(); ++i) {
    Child& child = children_[i];
    if (!child.reaped) {
      const pid_t r = waitpid(child.pid, &child.wait_status, WNOHANG);
      if (r == child.pid) child.reaped = true;
    }
    if (!child.reaped) continue;
    const int st = child.wait_status;
    std::string line = absl::StrCat("stage ", i + 1, " of ", children_.size(), " (", child.program,
                                    ", pid ", child.pid, ") ", DescribeWait(st));
    const bool consequence = (WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
                             (WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE);
    (consequence ? consequences : causes).push_back(std::move(line));
  }
  if (causes.empty() && consequences.empty()) return std::nullopt;
  if (causes.empty()) return absl::StrJoin(consequences, "; ");
  std::string out = absl::StrJoin(causes, "; ");
  if (!consequences.empty()) {
    absl::StrAppend(&out, " (and ", consequences.size(), " other stage",
                    consequences.size() == 1 ? "" : "s", " ended after it)");
  }
  return out;
}

std::vector<pid_t> ProcessPipeline::pids() const {
  std::vector<pid_t> out;
  for (const Child& child : children_) out.push_back(child.pid);
  return out;
}

absl::StatusOr<std::vector<std::string>> ProcessPipeline::Exchange(
    const std::vector<std::string>& records, absl::Duration timeout, const StopCheck& stop) {
  std::string outbound;
  std::vector<size_t> record_end;  // offset just past each record's NUL in `outbound`
  for (const std::string& r : records) {
    if (r.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError("pipeline record contains a NUL byte");
    }
    outbound.append(r);
    outbound.push_back('\0');
    record_end.push_back(outbound.size());
  }
  size_t write_limit = outbound.size();  // shrinks to a record boundary when `stop` fires
  size_t expected = records.size();
  size_t written = 0;
  absl::Status stopped;
  std::vector<std::string> answers;
  std::string inbound;
  const absl::Time deadline = absl::Now() + timeout;
  char buffer[16384];

  auto broken = [&](const std::string& what) {
    std::string message = what;
    // Give the dying stage a moment to be reapable so the message can name it.
    for (int i = 0; i < 20; ++i) {
      if (auto exited = FindExitedStage()) return absl::UnavailableError(absl::StrCat(what, "; ", *exited));
      usleep(1000);
    }
    return absl::UnavailableError(message);
  };

  while (answers.size() < expected) {
    if (stop && stopped.ok()) {
      stopped = stop();
      if (!stopped.ok()) {
        // Finish the record being written (the stages must see whole records), write no more.
        size_t k = 0;
        while (k < record_end.size() && record_end[k] <= written) ++k;
        if (written == 0 || (k > 0 && record_end[k - 1] == written)) {
          write_limit = written;
          expected = k;
        } else {
          write_limit = record_end[k];
          expected = k + 1;
        }
        if (answers.size() >= expected) break;
      }
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no answer from the pipeline within ", absl::FormatDuration(timeout), " (",
          answers.size(), " of ", expected, " records answered)"));
    }
    pollfd fds[2];
    int n = 0;
    fds[n++] = {output_fd_, POLLIN, 0};
    const bool want_write = written < write_limit;
    if (want_write) fds[n++] = {input_fd_, POLLOUT, 0};
    const int wait_ms = static_cast<int>(std::min<int64_t>(
        absl::ToInt64Milliseconds(left) + 1, stop ? 20 : 1000));
    const int ready = poll(fds, n, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (want_write && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t w = send(input_fd_, outbound.data() + written, write_limit - written,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        written += static_cast<size_t>(w);
      } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return broken(absl::StrCat("writing to the pipeline failed: ", std::strerror(errno)));
      }
    }
    if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      const ssize_t r = read(output_fd_, buffer, sizeof(buffer));
      if (r == 0) return broken("the pipeline closed its output");
      if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        return broken(absl::StrCat("reading from the pipeline failed: ", std::strerror(errno)));
      }
      inbound.append(buffer, static_cast<size_t>(r));
      size_t start = 0;
      for (size_t nul; (nul = inbound.find('\0', start)) != std::string::npos; start = nul + 1) {
        answers.emplace_back(inbound, start, nul - start);
      }
      inbound.erase(0, start);
      if (answers.size() > expected) {
        return absl::InternalError(absl::StrCat("the pipeline answered ", answers.size(),
                                                " records for ", expected, " written"));
      }
    }
  }
  if (!stopped.ok()) return stopped;
  if (!inbound.empty()) {
    return absl::InternalError("the pipeline wrote bytes after its last answer");
  }
  return answers;
}

}  // namespace vox
