#ifndef VOX_ENGINES_TEXT_NUM2WORDS_NUMBER_H_
#define VOX_ENGINES_TEXT_NUM2WORDS_NUMBER_H_

// The arithmetic under the num2words port (number_expansion.h): non-negative integers of any
// size as decimal strings, and Python numbers (an int, or an integral float whose + and * round
// through doubles) as num2words computes with them. Internal to engines/text's number expansion.
// Values and pure functions: thread-safe, no global state.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

namespace vox::num2words::internal {

// A non-negative integer of any size as a decimal string without leading zeros ("0" = 0).
using Nat = std::string;

// `d` (ASCII digits, leading zeros allowed; empty = 0) without its leading zeros.
Nat Normalize(std::string_view d);
Nat FromInt(uint64_t v);
int Cmp(const Nat& a, const Nat& b);  // -1, 0, 1
bool Lt(const Nat& a, uint64_t b);
bool Eq(const Nat& a, uint64_t b);
Nat Add(const Nat& a, const Nat& b);
Nat Mul(const Nat& a, const Nat& b);
bool DivisibleByPow10(const Nat& a, size_t k);
Nat Pow10(size_t k);
bool IsPow10(const Nat& a);
uint64_t Small(const Nat& a);  // the value of a Nat known to fit in 64 bits

// Exact integer value of an integral double, as a decimal string.
Nat IntegralDoubleToNat(double v);

// A Python number as num2words sees it: an int, or an (integral) float. Comparisons between the
// two are exact in Python; + and * with a float operand round through doubles. `i` always holds
// the exact value, `f` the double when is_float.
struct PyNum {
  Nat i;
  bool is_float = false;
  double f = 0;
  static PyNum Int(Nat n) { return PyNum{std::move(n), false, 0}; }
  static PyNum Float(double d) { return PyNum{IntegralDoubleToNat(d), true, d}; }
  double AsDouble() const { return is_float ? f : std::strtod(i.c_str(), nullptr); }
};
int Cmp(const PyNum& a, const PyNum& b);
bool Lt(const PyNum& a, uint64_t b);
bool Eq(const PyNum& a, uint64_t b);
PyNum Add(const PyNum& a, const PyNum& b);
PyNum Mul(const PyNum& a, const PyNum& b);
// `a % 10**k == 0`; exact for floats too (fmod is exact and 10**k <= 10**6 is a double).
bool DivisibleByPow10(const PyNum& a, size_t k);

}  // namespace vox::num2words::internal

#endif  // VOX_ENGINES_TEXT_NUM2WORDS_NUMBER_H_
