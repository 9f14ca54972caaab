#include "ulmfit/text/normalize.h"

#include <cctype>

namespace ulmfit::text {
namespace {

/// Length of an HTML line break starting at `i`, or 0.
std::size_t html_break_length(std::string_view s, std::size_t i) {
  if (i + 3 > s.size() || s[i] != '<') return 0;
  if (std::tolower(static_cast<unsigned char>(s[i + 1])) != 'b' ||
      std::tolower(static_cast<unsigned char>(s[i + 2])) != 'r') {
    return 0;
  }
  std::size_t j = i + 3;
  while (j < s.size() && s[j] == ' ') ++j;
  if (j < s.size() && s[j] == '/') ++j;
  if (j < s.size() && s[j] == '>') return j + 1 - i;
  return 0;
}

}  // namespace

std::string normalize_document(std::string_view text, bool clean_html) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (clean_html && text[i] == '<') {
      const std::size_t n = html_break_length(text, i);
      if (n > 0) {
        out += ' ';
        i += n;
        continue;
      }
    }
    const char c = text[i++];
    out += (c == '\t' || c == '\r' || c == '\n') ? ' ' : c;
  }
  const auto first = out.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  const auto last = out.find_last_not_of(' ');
  return out.substr(first, last - first + 1);
}

}  // namespace ulmfit::text
