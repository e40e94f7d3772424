# nllb_engine_bench: the C++ side of "C++ against Python" and the "Memory" figure of
# docs/benchmarks.md ("Translation engine"): fixed-length greedy decoding time, memory read
# bandwidth and the bytes-per-token bound, peak RSS, and the output projection's kernels.
# bench/run_nllb_cpp_vs_python.sh runs it next to bench/nllb_python_reference.py.
if(TARGET vox_translate)
  add_executable(nllb_engine_bench ${CMAKE_CURRENT_LIST_DIR}/nllb_engine_bench.cc)
  target_link_libraries(nllb_engine_bench PRIVATE vox_translate vox_torch Threads::Threads)
  add_dependencies(nllb_engine_bench vox_spm_shim)
endif()
