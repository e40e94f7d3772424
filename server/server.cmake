# vox_server: the gRPC services, config, model loading and the engines' schedulers (no LibTorch).
# voxd: the daemon; links the engine libraries that exist in this build.
add_library(vox_server STATIC
  ${CMAKE_CURRENT_LIST_DIR}/call_log.cc
  ${CMAKE_CURRENT_LIST_DIR}/config.cc
  ${CMAKE_CURRENT_LIST_DIR}/discovery_service.cc
  ${CMAKE_CURRENT_LIST_DIR}/engine_step_models.cc
  ${CMAKE_CURRENT_LIST_DIR}/glossaries.cc
  ${CMAKE_CURRENT_LIST_DIR}/idle_streams.cc
  ${CMAKE_CURRENT_LIST_DIR}/model_loader.cc
  ${CMAKE_CURRENT_LIST_DIR}/model_registry.cc
  ${CMAKE_CURRENT_LIST_DIR}/speech_service.cc
  ${CMAKE_CURRENT_LIST_DIR}/ssml_synthesis.cc
  ${CMAKE_CURRENT_LIST_DIR}/synthesis_call.cc
  ${CMAKE_CURRENT_LIST_DIR}/synthesize_stream_reactor.cc
  ${CMAKE_CURRENT_LIST_DIR}/speech_translate_session.cc
  ${CMAKE_CURRENT_LIST_DIR}/speech_translation_service.cc
  ${CMAKE_CURRENT_LIST_DIR}/thread_pool.cc
  ${CMAKE_CURRENT_LIST_DIR}/translate_plan.cc
  ${CMAKE_CURRENT_LIST_DIR}/translation_service.cc
  ${CMAKE_CURRENT_LIST_DIR}/utterance_queue.cc
  ${CMAKE_CURRENT_LIST_DIR}/voice_file.cc
  ${CMAKE_CURRENT_LIST_DIR}/voice_service.cc
  ${CMAKE_CURRENT_LIST_DIR}/voice_store.cc
  ${CMAKE_CURRENT_LIST_DIR}/vox_server.cc
)
target_link_libraries(vox_server PUBLIC
  vox_proto vox_core vox_audio vox_text vox_metrics vox_scheduler vox_auth gRPC::grpc++ gRPC::grpc++_reflection tomlplusplus::tomlplusplus
  nlohmann_json::nlohmann_json absl::status absl::statusor absl::strings absl::str_format
  absl::time absl::synchronization Threads::Threads)

# Engines voxd can load: NLLB and the built-in engines always, XTTS unless switched off.
set(VOX_SERVER_ENGINE_LIBS vox_torch vox_translate vox_builtin)
set(VOX_SERVER_ENGINE_DEFS)
# XTTS speech engine in voxd (OFF builds voxd without it).
option(VOX_VOXD_WITH_XTTS "Link the XTTS speech engine into voxd" ON)
if(VOX_VOXD_WITH_XTTS)
  list(APPEND VOX_SERVER_ENGINE_LIBS vox_speech)
  list(APPEND VOX_SERVER_ENGINE_DEFS VOX_HAVE_XTTS=1)
endif()

add_library(vox_server_engines STATIC ${CMAKE_CURRENT_LIST_DIR}/engine_loaders.cc)
target_link_libraries(vox_server_engines PUBLIC vox_server ${VOX_SERVER_ENGINE_LIBS})
target_compile_definitions(vox_server_engines PRIVATE ${VOX_SERVER_ENGINE_DEFS})

# thread_stacks.cc: see its header (civetweb threads vs. the static TLS of the engines' libraries).
add_executable(voxd ${CMAKE_CURRENT_LIST_DIR}/voxd_main.cc ${CMAKE_CURRENT_LIST_DIR}/thread_stacks.cc)
target_link_libraries(voxd PRIVATE ${CMAKE_DL_LIBS})
target_link_libraries(voxd PRIVATE vox_server_engines vox_server)
