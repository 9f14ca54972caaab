#pragma once
/// Case and repetition markers, after fastai's text rules (fastai.text.core:
/// replace_maj, replace_all_caps, replace_rep, replace_wrep): the vocabulary
/// sees "the" once instead of "the", "The" and "THE", and "!!!!!!" as a count.
/// Unlike fastai's, every rewrite here is undone by remove_markers, so a
/// tokenizer that applies them still decodes to the text it was given:
///
///   add_markers("The film was GREAT, sooooo good")
///     == "xxmaj the film was xxup great, sxxrep 5 o good"
///   remove_markers(add_markers(s)) == s
///
/// - xxmaj w: a word whose first letter is upper case and the rest lower;
/// - xxup w: a word of two or more letters, all upper case;
/// - xxrep N c: a character repeated N >= 4 times ("!!!!" -> "xxrep 4 !"; no space added around it,
///   so the text next to it is unchanged);
/// - xxwrep N w: a word repeated N >= 3 times, one space apart.
/// Words are runs of letters (Unicode categories L*), or for xxwrep runs of
/// letters and digits. A word whose case does not survive lower-casing and
/// back (German sharp s, for one) is left as it is. Text that already holds
/// the marker words is not escaped: remove_markers would read them.
#include <string>
#include <string_view>

namespace ulmfit::text {

/// The marker words, which a tokenizer keeps as single pieces.
inline constexpr const char* kMarkerWords[] = {"xxmaj", "xxup", "xxrep", "xxwrep"};

std::string add_markers(std::string_view text);
std::string remove_markers(std::string_view text);

}  // namespace ulmfit::text
