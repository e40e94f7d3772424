#include "server/model_loader.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "engines/core/languages.h"

namespace vox {
namespace {

namespace fs = std::filesystem;

template <typename Map>
std::vector<std::string> Keys(const Map& m) {
  std::vector<std::string> keys;
  for (const auto& [k, _] : m) keys.push_back(k);
  return keys;
}

// Runs `loaders.configure_worker_thread` on each replica's worker thread before its first
// sequence.
WorkerInit WorkerInitFor(const ModelLoaders& loaders, const EngineOptions& options) {
  if (!loaders.configure_worker_thread) return nullptr;
  return [fn = loaders.configure_worker_thread, options] { fn(options); };
}

EngineOptions OptionsFor(const EngineKindConfig& kind, const ServerConfig& config) {
  EngineOptions options = kind.options;
  options.verify_checksums = config.verify_checksums;
  return options;
}

// Loads one model with `load` and makes `kind.replicas - 1` more engines over it with
// NewReplica() (the weights are shared, not loaded again), hands them to `add(replicas,
// scheduler options, clock, worker init)` and logs the load.
template <typename Load, typename Add>
absl::Status LoadReplicas(const Load& load, const std::string& name, Manifest manifest,
                          const EngineKindConfig& kind, const ServerConfig& config,
                          const ModelLoaders& loaders, Clock* clock, absl::Time start,
                          const Add& add) {
  const EngineOptions options = OptionsFor(kind, config);
  const int count = std::max(1, kind.replicas);
  auto first = load(name, std::move(manifest), options);
  if (!first.ok()) {
    return absl::Status(first.status().code(), absl::StrCat("cannot load model '", name, "': ",
                                                            first.status().message()));
  }
  std::vector<typename decltype(first)::value_type> replicas;
  replicas.push_back(std::move(*first));
  for (int r = 1; r < count; ++r) {
    auto replica = replicas[0]->NewReplica();
    if (!replica.ok()) {
      return absl::Status(replica.status().code(),
                          absl::StrCat("model '", name, "': replica ", r, ": ",
                                       replica.status().message()));
    }
    replicas.push_back(std::move(*replica));
  }
  const ModelInfo info = replicas[0]->info();
  if (absl::Status s = add(std::move(replicas), SchedulerOptionsFor(kind), clock,
                           WorkerInitFor(loaders, options));
      !s.ok()) {
    return s;
  }
  std::fprintf(stderr,
               "voxd: loaded %s model '%s' (%s, %s, %s, %zu languages, %d replica%s) in %.2f s\n",
               info.kind.c_str(), info.name.c_str(), info.architecture.c_str(),
               info.device.c_str(), info.dtype.c_str(), info.languages.size(), count,
               count == 1 ? "" : "s", absl::ToDoubleSeconds(absl::Now() - start));
  return absl::OkStatus();
}

}  // namespace

absl::Status LoadModels(const ServerConfig& config, const ModelLoaders& loaders,
                        ModelRegistry* registry, Clock* clock) {
  if (config.models_dir.empty()) return absl::OkStatus();
  std::error_code ec;
  const fs::path root(config.models_dir);
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(
        absl::StrCat("models directory ", config.models_dir, " does not exist or is not a directory"));
  }
  std::vector<fs::path> dirs;
  for (const fs::directory_entry& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_directory(ec)) dirs.push_back(entry.path());
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list models directory ", config.models_dir, ": ", ec.message()));
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& dir : dirs) {
    const std::string name = dir.filename().string();
    const std::string manifest = (dir / "manifest.json").string();
    if (!fs::exists(manifest, ec)) {
      std::fprintf(stderr, "voxd: skipping %s: no manifest.json\n", dir.string().c_str());
      continue;
    }
    absl::StatusOr<Manifest> head = LoadManifest(dir.string(), config.verify_checksums);
    if (!head.ok()) return head.status();
    const absl::Time start = absl::Now();
    if (head->kind == "translation") {
      auto it = loaders.translation.find(head->architecture);
      if (it == loaders.translation.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            manifest, ": ",
            UnknownValueMessage("translation architecture", head->architecture,
                                Keys(loaders.translation)),
            " (this build of voxd has no loader for it)"));
      }
      if (absl::Status st = LoadReplicas(it->second, name, *std::move(head), config.translation,
                                         config, loaders, clock, start,
                                         [registry](auto replicas, auto... rest) {
                                           return registry->AddTranslation(std::move(replicas),
                                                                           rest...);
                                         });
          !st.ok()) {
        return st;
      }
    } else if (head->kind == "speech") {
      auto it = loaders.speech.find(head->architecture);
      if (it == loaders.speech.end()) {
        return absl::FailedPreconditionError(absl::StrCat(
            manifest, ": ",
            UnknownValueMessage("speech architecture", head->architecture, Keys(loaders.speech)),
            " (this build of voxd has no loader for it)"));
      }
      if (absl::Status st = LoadReplicas(it->second, name, *std::move(head), config.speech, config,
                                         loaders, clock, start,
                                         [registry](auto replicas, auto... rest) {
                                           return registry->AddSpeech(std::move(replicas), rest...);
                                         });
          !st.ok()) {
        return st;
      }
    } else {
      return absl::FailedPreconditionError(absl::StrCat(
          manifest, ": field 'kind': ",
          UnknownValueMessage("kind", head->kind, {"translation", "speech"})));
    }
  }
  return absl::OkStatus();
}

}  // namespace vox
