# Text as Synthesize and SynthesizeStream take it (docs/api.md): a strict parser for the SSML
# subset, say-as expansion (with the num2words port of the xtts part), and the live-text
# segmenter (sentences from sentence_splitter.h).
list(APPEND VOX_TEXT_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/ssml_parser.cc
  ${CMAKE_CURRENT_LIST_DIR}/ssml_say_as.cc
  ${CMAKE_CURRENT_LIST_DIR}/live_text_segmenter.cc)
