#pragma once
/// UTF-8 validation for corpus readers, and code point decoding and encoding
/// for the text rules (BERT's normaliser, case markers).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ulmfit::util {

/// Byte offset of the first invalid UTF-8 sequence in `text`, or npos when the
/// whole text is valid (overlong forms, surrogates and code points past
/// U+10FFFF are invalid).
std::size_t find_invalid_utf8(std::string_view text);

/// The code points of `text`; each invalid byte becomes U+FFFD, as a lossy
/// UTF-8 decoder gives.
std::vector<std::int32_t> decode_utf8(std::string_view text);

/// Appends code point `c` to `out` as UTF-8.
void append_utf8(std::int32_t c, std::string& out);

}  // namespace ulmfit::util
