# vox_stream_bench: SynthesizeStream fed one word at a time against a running voxd: the first
# sentence's first audio (from the piece that completed it) against Synthesize of that sentence
# alone (docs/benchmarks.md, "Live text"). A gRPC client: not in engines-only builds.
if(TARGET vox_proto)
  add_executable(vox_stream_bench ${CMAKE_CURRENT_LIST_DIR}/stream/stream_bench.cc)
  target_link_libraries(vox_stream_bench PRIVATE vox_proto gRPC::grpc++ absl::strings
                        absl::str_format absl::time Threads::Threads)
endif()
