#include "engines/text/language_detector.h"

#include <cld2/public/compact_lang_det.h>
#include <cld2/public/encodings.h>

#include <cstring>
#include <utility>

namespace vox {
namespace {

// CLD2 code -> NLLB code, for every CLD2 language NLLB-200 also has. Where NLLB has several
// variants, the one NLLB's own documentation calls the standard written form (Arabic: arb,
// Persian: pes, Malay: zsm, Norwegian Bokmål: nob, Chinese: zho_Hans / zho_Hant).
constexpr std::pair<const char*, const char*> kCld2ToNllb[] = {
    {"af", "afr_Latn"}, {"am", "amh_Ethi"}, {"ar", "arb_Arab"}, {"as", "asm_Beng"},
    {"az", "azj_Latn"}, {"ba", "bak_Cyrl"}, {"be", "bel_Cyrl"}, {"bg", "bul_Cyrl"},
    {"bh", "bho_Deva"}, {"bn", "ben_Beng"}, {"bo", "bod_Tibt"}, {"bs", "bos_Latn"},
    {"ca", "cat_Latn"}, {"ceb", "ceb_Latn"}, {"cs", "ces_Latn"}, {"cy", "cym_Latn"},
    {"da", "dan_Latn"}, {"de", "deu_Latn"}, {"dz", "dzo_Tibt"}, {"el", "ell_Grek"},
    {"en", "eng_Latn"}, {"eo", "epo_Latn"}, {"es", "spa_Latn"}, {"et", "est_Latn"},
    {"eu", "eus_Latn"}, {"fa", "pes_Arab"}, {"fi", "fin_Latn"}, {"fj", "fij_Latn"},
    {"fo", "fao_Latn"}, {"fr", "fra_Latn"}, {"ga", "gle_Latn"}, {"gd", "gla_Latn"},
    {"gl", "glg_Latn"}, {"gn", "grn_Latn"}, {"gu", "guj_Gujr"}, {"ha", "hau_Latn"},
    {"hi", "hin_Deva"}, {"hr", "hrv_Latn"}, {"ht", "hat_Latn"}, {"hu", "hun_Latn"},
    {"hy", "hye_Armn"}, {"id", "ind_Latn"}, {"ig", "ibo_Latn"}, {"ilo", "ilo_Latn"},
    {"is", "isl_Latn"}, {"it", "ita_Latn"}, {"iw", "heb_Hebr"}, {"ja", "jpn_Jpan"},
    {"jw", "jav_Latn"}, {"ka", "kat_Geor"}, {"kk", "kaz_Cyrl"}, {"km", "khm_Khmr"},
    {"kn", "kan_Knda"}, {"ko", "kor_Hang"}, {"ku", "kmr_Latn"}, {"ky", "kir_Cyrl"},
    {"lb", "ltz_Latn"}, {"lg", "lug_Latn"}, {"ln", "lin_Latn"}, {"lo", "lao_Laoo"},
    {"lt", "lit_Latn"}, {"lv", "lvs_Latn"}, {"mg", "plt_Latn"}, {"mi", "mri_Latn"},
    {"mk", "mkd_Cyrl"}, {"ml", "mal_Mlym"}, {"mn", "khk_Cyrl"}, {"mr", "mar_Deva"},
    {"ms", "zsm_Latn"}, {"mt", "mlt_Latn"}, {"my", "mya_Mymr"}, {"ne", "npi_Deva"},
    {"nl", "nld_Latn"}, {"nn", "nno_Latn"}, {"no", "nob_Latn"}, {"ny", "nya_Latn"},
    {"oc", "oci_Latn"}, {"or", "ory_Orya"}, {"pa", "pan_Guru"}, {"pl", "pol_Latn"},
    {"ps", "pbt_Arab"}, {"pt", "por_Latn"}, {"ro", "ron_Latn"}, {"ru", "rus_Cyrl"},
    {"rw", "kin_Latn"}, {"sa", "san_Deva"}, {"sd", "snd_Arab"}, {"sg", "sag_Latn"},
    {"si", "sin_Sinh"}, {"sk", "slk_Latn"}, {"sl", "slv_Latn"}, {"sm", "smo_Latn"},
    {"sn", "sna_Latn"}, {"so", "som_Latn"}, {"sq", "als_Latn"}, {"sr", "srp_Cyrl"},
    {"ss", "ssw_Latn"}, {"st", "sot_Latn"}, {"su", "sun_Latn"}, {"sv", "swe_Latn"},
    {"sw", "swh_Latn"}, {"ta", "tam_Taml"}, {"te", "tel_Telu"}, {"tg", "tgk_Cyrl"},
    {"th", "tha_Thai"}, {"ti", "tir_Ethi"}, {"tk", "tuk_Latn"}, {"tl", "tgl_Latn"},
    {"tn", "tsn_Latn"}, {"tr", "tur_Latn"}, {"ts", "tso_Latn"}, {"tt", "tat_Cyrl"},
    {"ug", "uig_Arab"}, {"uk", "ukr_Cyrl"}, {"ur", "urd_Arab"}, {"uz", "uzn_Latn"},
    {"vi", "vie_Latn"}, {"war", "war_Latn"}, {"wo", "wol_Latn"}, {"xh", "xho_Latn"},
    {"yi", "ydd_Hebr"}, {"yo", "yor_Latn"}, {"zh", "zho_Hans"}, {"zh-Hant", "zho_Hant"},
    {"zu", "zul_Latn"},
};

std::string ToNllb(const char* cld2_code) {
  for (const auto& [cld2, nllb] : kCld2ToNllb) {
    if (std::strcmp(cld2, cld2_code) == 0) return nllb;
  }
  return "";
}

}  // namespace

DetectedLanguage DetectLanguage(std::string_view text) {
  CLD2::Language language3[3];
  int percent3[3];
  double scores3[3];
  int text_bytes = 0;
  bool is_reliable = false;
  int valid_prefix_bytes = 0;
  const CLD2::CLDHints hints = {nullptr, nullptr, CLD2::UNKNOWN_ENCODING, CLD2::UNKNOWN_LANGUAGE};
  const CLD2::Language best = CLD2::ExtDetectLanguageSummaryCheckUTF8(
      text.data(), static_cast<int>(text.size()), /*is_plain_text=*/true, &hints,
      CLD2::kCLDFlagBestEffort, language3, percent3, scores3, /*resultchunkvector=*/nullptr,
      &text_bytes, &is_reliable, &valid_prefix_bytes);
  DetectedLanguage out;
  out.cld2_code = CLD2::LanguageCode(best);
  if (valid_prefix_bytes < static_cast<int>(text.size()) || best == CLD2::UNKNOWN_LANGUAGE) {
    return out;
  }
  out.nllb_code = ToNllb(out.cld2_code.c_str());
  out.confidence = language3[0] == best ? percent3[0] / 100.0 : 0.0;
  out.reliable = is_reliable && out.confidence >= kMinDetectionConfidence && !out.nllb_code.empty();
  return out;
}

}  // namespace vox
