# XTTS v2 text front end (docs/text.md): Unicode tables, Coqui's cleaners, a num2words port,
# HF-tokenizers-exact BPE, sentence splitting. Owned by the xttstext part of engines/text.
list(APPEND VOX_TEXT_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/unicode.cc
  ${CMAKE_CURRENT_LIST_DIR}/num2words_number.cc
  ${CMAKE_CURRENT_LIST_DIR}/num2words_converter.cc
  ${CMAKE_CURRENT_LIST_DIR}/num2words_languages.cc
  ${CMAKE_CURRENT_LIST_DIR}/num2words_italian.cc
  ${CMAKE_CURRENT_LIST_DIR}/num2words_hungarian.cc
  ${CMAKE_CURRENT_LIST_DIR}/num2words_czech.cc
  ${CMAKE_CURRENT_LIST_DIR}/number_expansion.cc
  ${CMAKE_CURRENT_LIST_DIR}/text_cleaner.cc
  ${CMAKE_CURRENT_LIST_DIR}/hangul_romanize.cc
  ${CMAKE_CURRENT_LIST_DIR}/xtts_bpe.cc
  ${CMAKE_CURRENT_LIST_DIR}/xtts_vocab_json.cc
  ${CMAKE_CURRENT_LIST_DIR}/xtts_tokenizer.cc
  ${CMAKE_CURRENT_LIST_DIR}/xtts_sentence_split.cc)
list(APPEND VOX_TEXT_LIBS nlohmann_json::nlohmann_json absl::str_format)

# vox_xtts_tokenize VOCAB_JSON [--lang LANG] [--prepare] [--jsonl]: one JSON id list per input line
# (tools/compare_tokenizers_xtts.py drives it).
add_executable(vox_xtts_tokenize ${CMAKE_CURRENT_LIST_DIR}/xtts_tokenize_main.cc)
target_link_libraries(vox_xtts_tokenize PRIVATE vox_text)
