#ifndef VOX_ENGINES_BUILTIN_PROCESS_PIPELINE_H_
#define VOX_ENGINES_BUILTIN_PROCESS_PIPELINE_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engines/core/translation_engine.h"  // StopCheck

namespace vox {

// A chain of long-running child processes, like a shell's `a | b | c`: each stage's stdout is the
// next stage's stdin through an OS pipe. The caller writes NUL-terminated records into the first
// stage and reads NUL-terminated records from the last one ("null-flush" mode: every stage
// flushes its output when it sees a NUL). Stage stderr is inherited (it lands in voxd's log).
//
// Children run with SIGPIPE at its default, an empty signal mask, LC_ALL=C.UTF-8, in their own
// process group (a Ctrl-C meant for voxd does not kill them). If voxd dies, the first stage sees
// EOF on its stdin and the chain exits on its own.
//
// Owns the children: the destructor kills (SIGKILL) and reaps every stage. NOT thread-safe; one
// owner makes every call (ApertiumEngine guards each pipeline with a mutex).
class ProcessPipeline {
 public:
  using Stage = std::vector<std::string>;  // argv; argv[0] is looked up on PATH

  // Starts every stage. Fails (INTERNAL, naming the program) if a program cannot be spawned.
  // A program that starts and then exits at once (bad arguments, missing data file) is not
  // noticed here; Exchange reports it.
  static absl::StatusOr<std::unique_ptr<ProcessPipeline>> Start(const std::vector<Stage>& stages);

  ~ProcessPipeline();
  ProcessPipeline(const ProcessPipeline&) = delete;
  ProcessPipeline& operator=(const ProcessPipeline&) = delete;

  // Writes every record followed by a NUL and reads one NUL-terminated answer per record, in
  // order, writing and reading concurrently (poll), so many records never deadlock on full pipe
  // buffers and later stages work on record k while earlier ones take record k+1.
  //   `records` must not contain NUL bytes.
  //   `timeout`: the whole exchange; past it → DEADLINE_EXCEEDED (the pipeline is then out of
  //     step and must be thrown away).
  //   `stop` (may be empty) is polled about every 20 ms; when it returns non-OK no further record
  //     is written, the answers of records already written are still read (keeping the pipeline
  //     in step), and that status is returned.
  // A stage that exits or closes its end → UNAVAILABLE naming the stage when it can be told.
  // After any non-OK return other than a stop status, the pipeline must be thrown away.
  absl::StatusOr<std::vector<std::string>> Exchange(const std::vector<std::string>& records,
                                                    absl::Duration timeout, const StopCheck& stop);

  // "stage 3 of 11 (apertium-tagger, pid 123) killed by signal 9" for each stage found to have
  // exited (reaping it; several joined by "; "), or nullopt when all are running. Cheap: one
  // waitpid(WNOHANG) per stage.
  std::optional<std::string> FindExitedStage();

  // Process ids of the stages, in pipeline order (for tests and logs).
  std::vector<pid_t> pids() const;

 private:
  ProcessPipeline() = default;
  void KillAll();

  struct Child {
    pid_t pid = -1;
    std::string program;
    bool reaped = false;
    int wait_status = 0;
  };
  std::vector<Child> children_;
  int input_fd_ = -1;   // our end of the first stage's stdin (a socket: send() with MSG_NOSIGNAL)
  int output_fd_ = -1;  // read end of the last stage's stdout
};

}  // namespace vox

#endif  // VOX_ENGINES_BUILTIN_PROCESS_PIPELINE_H_
