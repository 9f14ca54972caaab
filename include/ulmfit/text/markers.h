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
///
/// Two sets of rules; a tokenizer model says which it was trained with:
/// - kWholeWords (models trained since 2026-12-03): a marker for the first
///   letters of a whitespace-separated word goes before the whole word
///   ("\"Robots\"" -> "xxmaj \"robots\"", where kLetterRuns wrote
///   "\"xxmaj robots\"" and split the word in two), and a lone upper case
///   letter ("I", "A", the letters of "U.S.") stays as it is: a piece of its
///   own is one token, a marker and the letter two. On the 500 validation
///   reviews of bench/fastai_comparison.sh, with a tokenizer trained on its
///   5,000: 14,021 markers instead of 16,032, 185,032 tokens instead of
///   186,411 (bench/RESULTS.md, 2026-12-03).
/// - kLetterRuns (earlier models): every letter run marked where it stands.
/// Words are runs of letters (Unicode categories L*), or for xxwrep runs of
/// letters and digits. A word whose case does not survive lower-casing and
/// back (German sharp s, for one) is left as it is. Text that already holds
/// the marker words is not escaped: remove_markers would read them.
#include <string>
#include <string_view>

namespace ulmfit::text {

/// The marker words, which a tokenizer keeps as single pieces.
inline constexpr const char* kMarkerWords[] = {"xxmaj", "xxup", "xxrep", "xxwrep"};

enum class MarkerRules { kLetterRuns, kWholeWords };
/// A piece that a tokenizer trained with kWholeWords holds, so that models
/// trained before keep the rules their vocabulary was made with.
inline constexpr const char* kWholeWordsPiece = "<markers:whole-words>";

std::string add_markers(std::string_view text, MarkerRules rules = MarkerRules::kWholeWords);
std::string remove_markers(std::string_view text, MarkerRules rules = MarkerRules::kWholeWords);

}  // namespace ulmfit::text
