# builtin_bench: latency of the built-in engines (Apertium pipeline vs a process per request,
# espeak-ng synthesis speed). Prints a table; docs/benchmarks.md "Built-in engines" quotes it.
if(TARGET vox_builtin)
  add_executable(builtin_bench ${CMAKE_CURRENT_LIST_DIR}/builtin_bench.cc)
  target_link_libraries(builtin_bench PRIVATE vox_builtin)
endif()
