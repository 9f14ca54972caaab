#pragma once
/// UTF-8 validation for corpus readers.
#include <cstddef>
#include <string_view>

namespace ulmfit::util {

/// Byte offset of the first invalid UTF-8 sequence in `text`, or npos when the
/// whole text is valid (overlong forms, surrogates and code points past
/// U+10FFFF are invalid).
std::size_t find_invalid_utf8(std::string_view text);

}  // namespace ulmfit::util
