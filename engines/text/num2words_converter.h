#ifndef VOX_ENGINES_TEXT_NUM2WORDS_CONVERTER_H_
#define VOX_ENGINES_TEXT_NUM2WORDS_CONVERTER_H_

// Num2Word_Base of python3-num2words 0.5.10, the shared half of the num2words port
// (number_expansion.h): the card table, splitnum and clean that read an integer out through a
// language's Merge, to_cardinal_float, and the scale-word builders of Num2Word_EU/EN. Each
// language (num2words_languages.h) is a subclass. Internal to engines/text's number expansion.
// A Converter is immutable once constructed; its const methods are thread-safe.

#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/text/num2words_number.h"

namespace vox::num2words::internal {

struct Card {
  Nat value;
  std::string word;
};

// Num2Word_Base's cards/splitnum/clean and each language's merge.
class Converter {
 public:
  virtual ~Converter() = default;
  const std::vector<Card>& cards() const { return cards_; }  // descending
  const Nat& maxval() const { return maxval_; }
  std::string pointword;

  absl::StatusOr<std::string> ToCardinal(const Nat& value) const {
    return ToCardinal(PyNum::Int(value));
  }
  // to_cardinal of an int, or of an integral float (whose divmods run in doubles, as in Python).
  // OutOfRange when the value is not below maxval() (num2words' OverflowError).
  absl::StatusOr<std::string> ToCardinal(const PyNum& num) const;
  // A language's to_cardinal override applied after the base algorithm (to the whole reading,
  // floats included); identity by default.
  virtual std::string PostCardinal(std::string text) const { return text; }
  virtual std::pair<std::string, PyNum> Merge(const std::string& lt, const PyNum& ln,
                                              const std::string& rt, const PyNum& rn) const = 0;
  // The language's to_ordinal of an int; errors as num2words::Ordinal documents.
  virtual absl::StatusOr<std::string> ToOrdinal(const Nat& value) const = 0;

 protected:
  // Sets the cards, largest first: powers of ten (exponent, word), then (value, word) pairs, then
  // the words of len(low) - 1 down to 0; maxval is 1000 times the largest card.
  void Finish(std::vector<std::pair<size_t, std::string>> high_pow10,
              std::vector<std::pair<int, std::string>> mid, std::vector<std::string> low);

 private:
  struct Node {
    bool leaf = true;
    std::string text;
    PyNum num;
    std::vector<Node> items;
  };
  static Node Leaf(std::string t, PyNum n);
  static Node List(std::vector<Node> items);
  Node SplitNum(const PyNum& value) const;
  Node Clean(Node val) const;  // Base.clean: `val` is a list node.

  std::vector<Card> cards_;
  std::map<Nat, std::string> word_of_;
  Nat maxval_;
};

// num2words(value, lang=...) for a Python float: integral floats read as integers (ToCardinal),
// others as Num2Word_Base.to_cardinal_float does. OutOfRange for inf/NaN.
absl::StatusOr<std::string> CardinalOfDouble(const Converter& conv, double value);

// The Latin prefixes of the scale words above a million, largest first: Num2Word_EU.setup's
// `high` = [hundred] + reversed(unit + ten for ten in tens for unit in units) + lows.
std::vector<std::string> ScalePrefixes(const std::string& hundred,
                                       const std::vector<std::string>& units,
                                       const std::vector<std::string>& tens,
                                       const std::vector<std::string>& lows);

// Num2Word_EU.setup's own spelling (en and fr use it unchanged).
const std::vector<std::string>& LatinScalePrefixes();

// The scale cards (power of ten, word), largest first, down to 10^6.
// Long scale (`milliard_suffix` set; Num2Word_EU.set_high_numwords, fr and de): 10^n is
// prefix + milliard_suffix and 10^(n-3) prefix + million_suffix, n = 3 + 6 * len(prefixes) down
// by 6. Short scale (`milliard_suffix` empty; Num2Word_EN.set_high_numwords): 10^n is
// prefix + million_suffix, n = 3 + 3 * len(prefixes) down by 3.
std::vector<std::pair<size_t, std::string>> ScaleCards(const std::vector<std::string>& prefixes,
                                                       const std::string& milliard_suffix,
                                                       const std::string& million_suffix);

// Python's str(value) for a finite float: shortest round-trip digits, exponent form ("1e+16",
// "1.5e-05") when the decimal point would sit more than 16 places right or 4 left.
std::string PyFloatRepr(double value);

}  // namespace vox::num2words::internal

#endif  // VOX_ENGINES_TEXT_NUM2WORDS_CONVERTER_H_
