# voxbench: the load generator (docs/voxbench.md). vox_voxbench holds everything but main() so
# the tests link it.
if(TARGET vox_proto)
  add_library(vox_voxbench STATIC
    ${CMAKE_CURRENT_LIST_DIR}/voxbench/latency_stats.cc
    ${CMAKE_CURRENT_LIST_DIR}/voxbench/load_runner.cc
    ${CMAKE_CURRENT_LIST_DIR}/voxbench/options.cc
    ${CMAKE_CURRENT_LIST_DIR}/voxbench/report.cc)
  target_link_libraries(vox_voxbench PUBLIC
    vox_proto vox_client_credentials gRPC::grpc++ protobuf::libprotobuf nlohmann_json::nlohmann_json
    absl::status absl::statusor absl::strings absl::str_format absl::time absl::synchronization
    Threads::Threads)
  add_executable(voxbench ${CMAKE_CURRENT_LIST_DIR}/voxbench/voxbench_main.cc)
  target_link_libraries(voxbench PRIVATE vox_voxbench)
endif()
