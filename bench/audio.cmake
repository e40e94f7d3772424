# opus_bench: Opus encoding speed of vox_audio (OpusEncoder, AudioStreamEncoder) against raw
# libopus at the same settings, in the same run. See docs/benchmarks.md, "Audio encoding".
if(benchmark_FOUND AND TARGET vox_audio)
  add_executable(opus_bench ${CMAKE_CURRENT_LIST_DIR}/opus_bench.cc)
  target_link_libraries(opus_bench PRIVATE vox_audio PkgConfig::OPUS benchmark::benchmark)
endif()
