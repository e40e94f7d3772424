# weight_gemv_bench: the int8 kernels of vox::linear on plain arrays (no LibTorch).
if(TARGET vox_cpu_kernels)
  add_executable(weight_gemv_bench ${CMAKE_CURRENT_LIST_DIR}/weight_gemv_bench.cc)
  target_link_libraries(weight_gemv_bench PRIVATE vox_cpu_kernels)
endif()
