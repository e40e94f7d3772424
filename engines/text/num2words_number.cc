#include "engines/text/num2words_number.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace vox::num2words::internal {

Nat Normalize(std::string_view d) {
  size_t i = 0;
  while (i + 1 < d.size() && d[i] == '0') ++i;
  return d.empty() ? Nat("0") : Nat(d.substr(i));
}
Nat FromInt(uint64_t v) { return std::to_string(v); }
int Cmp(const Nat& a, const Nat& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b) < 0 ? -1 : (a == b ? 0 : 1);
}
bool Lt(const Nat& a, uint64_t b) { return Cmp(a, FromInt(b)) < 0; }
bool Eq(const Nat& a, uint64_t b) { return a == FromInt(b); }
Nat Add(const Nat& a, const Nat& b) {
  std::string r;
  int carry = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()) || carry; ++i) {
    int s = carry;
    if (i < a.size()) s += a[a.size() - 1 - i] - '0';
    if (i < b.size()) s += b[b.size() - 1 - i] - '0';
    r.push_back(static_cast<char>('0' + s % 10));
    carry = s / 10;
  }
  return Normalize(std::string(r.rbegin(), r.rend()));
}
Nat Mul(const Nat& a, const Nat& b) {
  std::vector<int> r(a.size() + b.size(), 0);
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < b.size(); ++j) {
      r[i + j + 1] += (a[i] - '0') * (b[j] - '0');
    }
  }
  for (size_t k = r.size() - 1; k > 0; --k) {
    r[k - 1] += r[k] / 10;
    r[k] %= 10;
  }
  std::string s;
  for (int d : r) s.push_back(static_cast<char>('0' + d));
  return Normalize(s);
}
bool DivisibleByPow10(const Nat& a, size_t k) {
  if (a == "0") return true;
  if (a.size() <= k) return false;
  for (size_t i = a.size() - k; i < a.size(); ++i) {
    if (a[i] != '0') return false;
  }
  return true;
}
Nat Pow10(size_t k) { return "1" + std::string(k, '0'); }
bool IsPow10(const Nat& a) { return a[0] == '1' && a.find_first_not_of('0', 1) == Nat::npos; }
uint64_t Small(const Nat& a) { return std::strtoull(a.c_str(), nullptr, 10); }

// Exact integer value of an integral double, as a decimal string.
Nat IntegralDoubleToNat(double v) {
  char buf[400];
  std::snprintf(buf, sizeof(buf), "%.0f", std::fabs(v));
  return Normalize(buf);
}

int Cmp(const PyNum& a, const PyNum& b) { return Cmp(a.i, b.i); }
bool Lt(const PyNum& a, uint64_t b) { return Lt(a.i, b); }
bool Eq(const PyNum& a, uint64_t b) { return Eq(a.i, b); }
PyNum Add(const PyNum& a, const PyNum& b) {
  if (!a.is_float && !b.is_float) return PyNum::Int(Add(a.i, b.i));
  return PyNum::Float(a.AsDouble() + b.AsDouble());
}
PyNum Mul(const PyNum& a, const PyNum& b) {
  if (!a.is_float && !b.is_float) return PyNum::Int(Mul(a.i, b.i));
  return PyNum::Float(a.AsDouble() * b.AsDouble());
}
bool DivisibleByPow10(const PyNum& a, size_t k) { return DivisibleByPow10(a.i, k); }

}  // namespace vox::num2words::internal
