# Python gRPC stubs for the example client (clients/python), generated at build time into
# ${VOX_PY_STUBS_DIR}. Target: vox_python_stubs (not in ALL). Uses protoc with Debian's
# grpc_python_plugin (protobuf-compiler-grpc): Debian's python3 -m grpc_tools.protoc bundles a
# protoc too old for proto3 `optional` (vox/v1/common.proto uses it) and rejects our protos.
# Included from tests/speech_translate/CMakeLists.txt, whose test runs the client.
find_program(VOX_PY_PROTOC protoc)
find_program(VOX_GRPC_PYTHON_PLUGIN grpc_python_plugin)
set(VOX_PY_STUBS_DIR ${CMAKE_BINARY_DIR}/clients/python/gen)
file(GLOB vox_py_protos ${PROJECT_SOURCE_DIR}/proto/vox/v1/*.proto)
set(vox_py_outputs)
foreach(proto ${vox_py_protos})
  get_filename_component(stem ${proto} NAME_WE)
  list(APPEND vox_py_outputs ${VOX_PY_STUBS_DIR}/vox/v1/${stem}_pb2.py
                             ${VOX_PY_STUBS_DIR}/vox/v1/${stem}_pb2_grpc.py)
endforeach()
if(NOT VOX_PY_PROTOC OR NOT VOX_GRPC_PYTHON_PLUGIN)
  message(FATAL_ERROR "clients/python: protoc and grpc_python_plugin are needed for the Python "
                      "client's stubs (Debian: protobuf-compiler, protobuf-compiler-grpc)")
endif()
add_custom_command(
  OUTPUT ${vox_py_outputs}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${VOX_PY_STUBS_DIR}
  COMMAND ${VOX_PY_PROTOC} -I${PROJECT_SOURCE_DIR}/proto
          --plugin=protoc-gen-grpc_python=${VOX_GRPC_PYTHON_PLUGIN}
          --python_out=${VOX_PY_STUBS_DIR} --grpc_python_out=${VOX_PY_STUBS_DIR} ${vox_py_protos}
  DEPENDS ${vox_py_protos}
  COMMENT "protoc + grpc_python_plugin: Python stubs for clients/python")
add_custom_target(vox_python_stubs DEPENDS ${vox_py_outputs})
