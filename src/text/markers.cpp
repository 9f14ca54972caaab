#include "ulmfit/text/markers.h"

#include <utf8proc.h>

#include <algorithm>
#include <vector>

#include "ulmfit/util/utf8.h"

namespace ulmfit::text {
namespace {

using Codepoints = std::vector<utf8proc_int32_t>;

void append(std::string& out, utf8proc_int32_t c) { util::append_utf8(c, out); }

void append(std::string& out, const Codepoints& cps, std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) append(out, cps[i]);
}

bool is_letter(utf8proc_int32_t c) {
  const auto cat = utf8proc_category(c);
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT ||
         cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_LO;
}
bool is_word_char(utf8proc_int32_t c) {
  const auto cat = utf8proc_category(c);
  return is_letter(c) || cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}
bool is_space(utf8proc_int32_t c) {
  const auto cat = utf8proc_category(c);
  return c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || cat == UTF8PROC_CATEGORY_ZS ||
         cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}
// Upper case that lower-casing and upper-casing again gives back.
bool reversible_upper(utf8proc_int32_t c) {
  return utf8proc_category(c) == UTF8PROC_CATEGORY_LU && utf8proc_toupper(utf8proc_tolower(c)) == c &&
         utf8proc_tolower(c) != c;
}
bool is_lower(utf8proc_int32_t c) { return utf8proc_category(c) == UTF8PROC_CATEGORY_LL; }

std::size_t run_end(const Codepoints& cps, std::size_t i, bool (*member)(utf8proc_int32_t)) {
  while (i < cps.size() && member(cps[i])) ++i;
  return i;
}

// Does `cps` hold the ASCII text `word` at `at`?
bool holds(const Codepoints& cps, std::size_t at, std::string_view word) {
  if (at + word.size() > cps.size()) return false;
  for (std::size_t k = 0; k < word.size(); ++k) {
    if (cps[at + k] != static_cast<unsigned char>(word[k])) return false;
  }
  return true;
}

// "N " at `at` (decimal digits, one space): N, and where the text after it starts.
bool read_count(const Codepoints& cps, std::size_t at, std::size_t& count, std::size_t& after) {
  std::size_t i = at;
  count = 0;
  while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9' && i - at < 9) count = count * 10 + static_cast<std::size_t>(cps[i++] - '0');
  if (i == at || i >= cps.size() || cps[i] != ' ') return false;
  after = i + 1;
  return true;
}

// Step 1: a word repeated 3+ times, one space apart -> "xxwrep N word".
Codepoints mark_word_repeats(const Codepoints& cps) {
  Codepoints result;
  std::size_t i = 0;
  while (i < cps.size()) {
    const bool starts_word = is_word_char(cps[i]) && (i == 0 || !is_word_char(cps[i - 1]));
    if (!starts_word) {
      result.push_back(cps[i++]);
      continue;
    }
    const std::size_t end = run_end(cps, i, is_word_char), len = end - i;
    std::size_t times = 1, pos = end;
    while (pos + 1 + len <= cps.size() && cps[pos] == ' ' &&
           std::equal(cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(end),
                      cps.begin() + static_cast<std::ptrdiff_t>(pos + 1)) &&
           (pos + 1 + len == cps.size() || !is_word_char(cps[pos + 1 + len]))) {
      ++times;
      pos += 1 + len;
    }
    if (times >= 3) {
      for (char c : "xxwrep " + std::to_string(times) + " ") result.push_back(static_cast<unsigned char>(c));
      result.insert(result.end(), cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(end));
      i = pos;
    } else {
      result.insert(result.end(), cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(end));
      i = end;
    }
  }
  return result;
}

// Step 2: "The" -> "xxmaj the", "GREAT" -> "xxup great".
Codepoints mark_case(const Codepoints& cps) {
  Codepoints result;
  auto push_ascii = [&](std::string_view s) {
    for (char c : s) result.push_back(static_cast<unsigned char>(c));
  };
  std::size_t i = 0;
  while (i < cps.size()) {
    if (!is_letter(cps[i])) {
      result.push_back(cps[i++]);
      continue;
    }
    const std::size_t end = run_end(cps, i, is_letter);
    bool rest_lower = true, all_upper = true;
    for (std::size_t k = i; k < end; ++k) {
      if (k > i && !is_lower(cps[k])) rest_lower = false;
      if (!reversible_upper(cps[k])) all_upper = false;
    }
    if (reversible_upper(cps[i]) && rest_lower) {
      push_ascii("xxmaj ");
      result.push_back(utf8proc_tolower(cps[i]));
      result.insert(result.end(), cps.begin() + static_cast<std::ptrdiff_t>(i + 1), cps.begin() + static_cast<std::ptrdiff_t>(end));
    } else if (all_upper && end - i >= 2) {
      push_ascii("xxup ");
      for (std::size_t k = i; k < end; ++k) result.push_back(utf8proc_tolower(cps[k]));
    } else {
      result.insert(result.end(), cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(end));
    }
    i = end;
  }
  return result;
}

// Step 3: a character repeated 4+ times -> "xxrep N c", written as UTF-8.
std::string mark_char_repeats(const Codepoints& cps) {
  std::string out;
  std::size_t i = 0;
  while (i < cps.size()) {
    std::size_t end = i + 1;
    while (end < cps.size() && cps[end] == cps[i]) ++end;
    if (end - i >= 4 && !is_space(cps[i])) {
      out += "xxrep " + std::to_string(end - i) + " ";
      append(out, cps[i]);
    } else {
      append(out, cps, i, end);
    }
    i = end;
  }
  return out;
}

// Inverse of step 3.
Codepoints unmark_char_repeats(const Codepoints& cps) {
  Codepoints result;
  for (std::size_t i = 0; i < cps.size();) {
    std::size_t count = 0, after = 0;
    if (holds(cps, i, "xxrep ") && read_count(cps, i + 6, count, after) && after < cps.size()) {
      result.insert(result.end(), count, cps[after]);
      i = after + 1;
    } else {
      result.push_back(cps[i++]);
    }
  }
  return result;
}

// Inverse of step 2: a marker is a whole letter run, then one space, then letters.
Codepoints unmark_case(const Codepoints& cps) {
  Codepoints result;
  for (std::size_t i = 0; i < cps.size();) {
    const bool at_run = i == 0 || !is_letter(cps[i - 1]);
    const bool maj = at_run && holds(cps, i, "xxmaj ") && i + 6 < cps.size() && is_letter(cps[i + 6]);
    const bool up = at_run && !maj && holds(cps, i, "xxup ") && i + 5 < cps.size() && is_letter(cps[i + 5]);
    if (!maj && !up) {
      result.push_back(cps[i++]);
      continue;
    }
    const std::size_t start = i + (maj ? 6 : 5), end = run_end(cps, start, is_letter);
    for (std::size_t k = start; k < end; ++k) result.push_back(up || k == start ? utf8proc_toupper(cps[k]) : cps[k]);
    i = end;
  }
  return result;
}

// Inverse of step 1.
std::string unmark_word_repeats(const Codepoints& cps) {
  std::string out;
  for (std::size_t i = 0; i < cps.size();) {
    const bool at_run = i == 0 || !is_word_char(cps[i - 1]);
    std::size_t count = 0, after = 0;
    if (at_run && holds(cps, i, "xxwrep ") && read_count(cps, i + 7, count, after) && after < cps.size() &&
        is_word_char(cps[after])) {
      const std::size_t end = run_end(cps, after, is_word_char);
      for (std::size_t n = 0; n < count; ++n) {
        if (n > 0) out += ' ';
        append(out, cps, after, end);
      }
      i = end;
    } else {
      append(out, cps[i++]);
    }
  }
  return out;
}

}  // namespace

std::string add_markers(std::string_view text) {
  if (util::find_invalid_utf8(text) != std::string_view::npos) return std::string(text);  // not UTF-8: left alone
  return mark_char_repeats(mark_case(mark_word_repeats(util::decode_utf8(text))));
}

std::string remove_markers(std::string_view text) {
  if (util::find_invalid_utf8(text) != std::string_view::npos) return std::string(text);
  return unmark_word_repeats(unmark_case(unmark_char_repeats(util::decode_utf8(text))));
}

}  // namespace ulmfit::text
