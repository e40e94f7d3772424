# SentencePiece, isolated (DESIGN.md, build traps): vox_spm_shim is a small SHARED library, the
# only thing that links libsentencepiece and includes its header. vox_text loads it at run time
# with dlopen (RTLD_DEEPBIND on Linux) through sentencepiece_tokenizer.cc, so libsentencepiece's
# own protobuf never meets gRPC's.
add_library(vox_spm_shim SHARED ${CMAKE_CURRENT_LIST_DIR}/sentencepiece_shim.cc)
target_link_libraries(vox_spm_shim PRIVATE PkgConfig::SENTENCEPIECE)
set_target_properties(vox_spm_shim PROPERTIES
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON)
# The shim must not pick up the tree-wide include path's Abseil first: its header brings its own
# string_view. Nothing to do here beyond keeping it a separate target.

list(APPEND VOX_TEXT_SOURCES ${CMAKE_CURRENT_LIST_DIR}/sentencepiece_tokenizer.cc)
list(APPEND VOX_TEXT_LIBS ${CMAKE_DL_LIBS})
# Where the loader looks for the shim: $VOX_SPM_SHIM, next to the executable, then the build tree.
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/sentencepiece_tokenizer.cc PROPERTIES
  COMPILE_DEFINITIONS
  "VOX_SPM_SHIM_BUILD_PATH=\"$<TARGET_FILE:vox_spm_shim>\";VOX_SPM_SHIM_FILE_NAME=\"$<TARGET_FILE_NAME:vox_spm_shim>\"")
# vox_text is created after this fragment runs; build the shim whenever vox_text is built.
cmake_language(DEFER CALL add_dependencies vox_text vox_spm_shim)
