# speech_bench: XTTS engine latency figures (time to first audio / total, per-chunk vocoder cost,
# real-time factor). Prints a table; docs/benchmarks.md "Speech engine" quotes it.
if(TARGET vox_speech)
  add_executable(speech_bench ${CMAKE_CURRENT_LIST_DIR}/speech_bench.cc)
  target_link_libraries(speech_bench PRIVATE vox_speech vox_torch)
  target_compile_definitions(speech_bench PRIVATE VOX_TINY_DIR="${VOX_TINY_DIR}")
  if(TARGET tiny_xtts)
    add_dependencies(speech_bench tiny_xtts)
  endif()
endif()

# clone_bench: XttsEngine::CloneVoice on reference audio (docs/benchmarks.md, "Voice cloning").
if(TARGET vox_speech)
  add_executable(clone_bench ${CMAKE_CURRENT_LIST_DIR}/clone_bench.cc)
  target_link_libraries(clone_bench PRIVATE vox_speech vox_torch)
endif()
