# Text handling for Translate (docs/text.md, "Sentences, protected terms, detection"): the
# sentence splitter, protected-term masking, and source-language detection over Debian's
# libcld2 (libcld2-dev, installed by scripts/install-deps).
find_path(VOX_CLD2_INCLUDE_DIR cld2/public/compact_lang_det.h)
find_library(VOX_CLD2_LIBRARY cld2)
if(NOT VOX_CLD2_INCLUDE_DIR OR NOT VOX_CLD2_LIBRARY)
  message(FATAL_ERROR "libcld2 not found: install libcld2-dev (scripts/install-deps)")
endif()
list(APPEND VOX_TEXT_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/sentence_splitter.cc
  ${CMAKE_CURRENT_LIST_DIR}/protected_terms.cc
  ${CMAKE_CURRENT_LIST_DIR}/language_detector.cc)
list(APPEND VOX_TEXT_LIBS ${VOX_CLD2_LIBRARY})
# The headers are found as <cld2/public/...> under the system include path (Debian's layout).
