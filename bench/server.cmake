# server_overhead_bench: in-process engine vs the same Translate over gRPC on loopback
# (docs/benchmarks.md, "Server overhead"). Needs the NLLB engine in this build.
if(TARGET vox_server_engines AND TARGET vox_translate AND
   EXISTS ${PROJECT_SOURCE_DIR}/engines/translate/nllb_engine.h)
  add_executable(server_overhead_bench ${CMAKE_CURRENT_LIST_DIR}/server_overhead_bench.cc)
  target_link_libraries(server_overhead_bench PRIVATE vox_server_engines vox_server vox_torch)
  target_compile_definitions(server_overhead_bench PRIVATE VOX_TINY_DIR="${VOX_TINY_DIR}")
  if(TARGET tiny_nllb)
    add_dependencies(server_overhead_bench tiny_nllb)
  endif()
endif()
