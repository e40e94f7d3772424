# vox_latency: per-request latency of the NLLB and XTTS engines on one device (CPU, CUDA), built
# in every configuration that has the engines, VOX_ENGINES_ONLY included (no gRPC, no
# google-benchmark). scripts/gpu-check builds and runs it on a CUDA machine; docs/gpu.md.
if(TARGET vox_translate AND TARGET vox_speech)
  add_executable(vox_latency ${CMAKE_CURRENT_LIST_DIR}/latency/vox_latency.cc)
  target_link_libraries(vox_latency PRIVATE vox_translate vox_speech vox_torch
                        nlohmann_json::nlohmann_json Threads::Threads)
  # The SentencePiece shim is loaded at run time (engines/text/sentencepiece.cmake).
  add_dependencies(vox_latency vox_spm_shim)
endif()
