# SSML for Synthesize (docs/api.md, "SSML"): a strict parser for the subset, and say-as expansion
# (which uses the num2words port of the xtts part).
list(APPEND VOX_TEXT_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/ssml_parser.cc
  ${CMAKE_CURRENT_LIST_DIR}/ssml_say_as.cc)
