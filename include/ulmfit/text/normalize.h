#pragma once
/// Light text clean-up applied to every document before tokenisation.
#include <string>
#include <string_view>

namespace ulmfit::text {

/// Replaces HTML line breaks (<br />, <br/>, <br>, any case) with spaces when
/// `clean_html` is set, turns tabs, CR and LF into spaces, and trims both ends.
std::string normalize_document(std::string_view text, bool clean_html);

}  // namespace ulmfit::text
