#ifndef VOX_ENGINES_CORE_MODEL_INFO_H_
#define VOX_ENGINES_CORE_MODEL_INFO_H_

#include <map>
#include <string>
#include <vector>

namespace vox {

// What discovery reports about one loaded engine instance. Plain data; copyable; immutable once
// the engine is loaded, so any thread may read it.
struct ModelInfo {
  std::string name;          // unique engine instance name, e.g. the model directory's name
  std::string kind;          // "translation" or "speech"
  std::string architecture;  // "nllb-m2m100", "xtts-v2", "apertium", "espeak-ng"
  std::string device;        // "cpu", "cuda:0", "mps"
  std::string dtype;         // "float32", "bfloat16", ..., "n/a" for non-neural engines
  std::string weights;       // as dtype, or "int8" / "bfloat16" (compressed decoder weights)
  std::string vocoder_dtype; // XTTS: its vocoder's convolutions, "float32" or "bfloat16"; else ""
  std::string path;          // where it was loaded from ("" for built-ins)
  bool fallback = false;     // serves only what no primary engine serves
  std::vector<std::string> languages;  // NLLB codes
  // Languages the model lists that this engine cannot serve, NLLB code -> why (e.g. a text front
  // end vox does not implement); requests for them are refused with that reason.
  std::map<std::string, std::string> refused_languages;
};

}  // namespace vox

#endif  // VOX_ENGINES_CORE_MODEL_INFO_H_
