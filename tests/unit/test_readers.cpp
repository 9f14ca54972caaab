#include "../test_helpers.h"
#include "ulmfit/text/corpus.h"
#include "ulmfit/text/normalize.h"
#include "ulmfit/util/error.h"

namespace ulmfit {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::write_file;

config::DataSource source(const std::string& path, const std::string& format) {
  config::DataSource s;
  s.path = {path};
  s.format = format;
  return s;
}

std::string read_error(const config::DataSource& s, const std::vector<std::string>& labels = {}) {
  try {
    text::read_corpus(s, labels);
  } catch (const DataError& e) {
    return e.what();
  }
  return "no error";
}

std::vector<std::string> texts(const text::Corpus& c) {
  std::vector<std::string> out;
  for (const auto& d : c.documents) out.push_back(d.text);
  return out;
}

TEST(Readers, TextIsOneDocumentPerNonEmptyLine) {
  TempDir dir;
  const auto f = write_file(dir / "a.txt", "first doc\n\n  \nsecond<br />doc\r\n");
  const auto c = text::read_corpus(source(f, "text"));
  EXPECT_EQ(texts(c), (std::vector<std::string>{"first doc", "second doc"}));
  EXPECT_EQ(c.documents[0].label, -1);
}

TEST(Readers, WikitextGroupsLinesIntoArticles) {
  TempDir dir;
  const auto f = write_file(dir / "w.txt",
                            " \n = Alpha = \n \n A first para . \n \n = = Section = = \n More . \n"
                            " \n = Beta = \n \n Second article . \n");
  const auto c = text::read_corpus(source(f, "wikitext"));
  ASSERT_EQ(c.documents.size(), 2u);
  EXPECT_EQ(c.documents[0].text, "= Alpha = A first para . = = Section = = More .");
  EXPECT_EQ(c.documents[1].text, "= Beta = Second article .");
}

TEST(Readers, FolderUsesSubfolderNamesAsLabels) {
  TempDir dir;
  write_file(dir / "train/pos/1_9.txt", "good");
  write_file(dir / "train/neg/2_1.txt", "bad");
  write_file(dir / "train/neg/3_2.txt", "awful<br /><br />really");
  write_file(dir / "train/unsup/4_0.txt", "no label");
  write_file(dir / "train/urls_pos.txt", "http://example.com/not-a-review");
  const auto c = text::read_corpus(source(dir / "train", "folder"));
  EXPECT_EQ(c.label_names, (std::vector<std::string>{"neg", "pos"}));
  ASSERT_EQ(c.documents.size(), 4u);
  EXPECT_EQ(c.documents[0].text, "bad");
  EXPECT_EQ(c.documents[0].label, 0);
  EXPECT_EQ(c.documents[1].text, "awful  really");
  EXPECT_EQ(c.documents[2].label, 1);
  EXPECT_EQ(c.documents[3].label, -1);

  auto only = source(dir / "train", "folder");
  only.folders = {"pos", "neg"};
  EXPECT_EQ(text::read_corpus(only).documents.size(), 3u);
  write_file(dir / "flat/a.txt", "one");
  write_file(dir / "flat/b.txt", "two");
  EXPECT_EQ(texts(text::read_corpus(source(dir / "flat", "folder"))),
            (std::vector<std::string>{"one", "two"}));
  only.folders = {"missing"};
  EXPECT_THAT(read_error(only), HasSubstr("missing: folder not found"));
}

TEST(Readers, CsvFollowsRfc4180) {
  TempDir dir;
  const auto f = write_file(dir / "d.csv",
                            "id,text,label\n1,\"hello, world\",pos\n2,\"say \"\"hi\"\"\nthen go\",neg\n"
                            "3,plain,pos\r\n");
  const auto c = text::read_corpus(source(f, "csv"));
  EXPECT_EQ(texts(c), (std::vector<std::string>{"hello, world", "say \"hi\" then go", "plain"}));
  EXPECT_EQ(c.label_names, (std::vector<std::string>{"neg", "pos"}));
  EXPECT_EQ(c.documents[1].label, 0);
}

TEST(Readers, TsvKeepsQuotesAsTextUnlessAskedForRfc4180) {
  TempDir dir;
  // As a TSV made from aclImdb reads: reviews that open and close with quotes,
  // a lone quote, quotes around a word in the middle.
  const std::vector<std::string> reviews = {"\"Masks\" is a moving film", "\"all of it\"",
                                            "a 5'10\" actor, \"so-called\" drama", "\"", "ends with \"\""};
  std::string tsv = "label\ttext\n";
  for (const auto& r : reviews) tsv += "pos\t" + r + "\n";
  const auto f = write_file(dir / "quotes.tsv", tsv);
  const auto c = text::read_corpus(source(f, "tsv"));
  EXPECT_EQ(texts(c), reviews);

  // The explicit option reads RFC 4180 quoting in a TSV: a tab and doubled quotes inside quotes
  const auto quoted = write_file(dir / "rfc.tsv", "label\ttext\npos\t\"a\tb \"\"c\"\"\"\nneg\t\"x\"\n");
  auto rfc = source(quoted, "tsv");
  rfc.quoting = "rfc4180";
  // (documents then have their whitespace made single spaces, as every format's are)
  EXPECT_EQ(texts(text::read_corpus(rfc)), (std::vector<std::string>{"a b \"c\"", "x"}));
  // ... and that file read as plain TSV keeps every quote (a tab inside one splits the row: an error naming the line).
  EXPECT_EQ(read_error(source(quoted, "tsv")), quoted.string() + ":2: expected 2 fields, found 3");
  // CSV can have quoting switched off too.
  auto plain_csv = source(write_file(dir / "p.csv", "text,label\n\"hi\" there,pos\n"), "csv");
  plain_csv.quoting = "none";
  EXPECT_EQ(texts(text::read_corpus(plain_csv)), (std::vector<std::string>{"\"hi\" there"}));
}

TEST(Readers, TsvAndJsonl) {
  TempDir dir;
  const auto tsv = write_file(dir / "d.tsv", "label\ttext\n1\tone doc\n0\tanother\n");
  const auto c = text::read_corpus(source(tsv, "tsv"));
  EXPECT_EQ(texts(c), (std::vector<std::string>{"one doc", "another"}));
  EXPECT_EQ(c.documents[0].label, 1);

  const auto jl = write_file(dir / "d.jsonl",
                             "{\"text\": \"caf\\u00e9 time\", \"label\": \"pos\"}\n\n{\"text\": \"x\", \"label\": 3}\n");
  const auto j = text::read_corpus(source(jl, "jsonl"));
  EXPECT_EQ(j.documents[0].text, "caf\xc3\xa9 time");
  EXPECT_EQ(j.label_names, (std::vector<std::string>{"3", "pos"}));
}

TEST(Readers, MalformedRowsNameFileAndLine) {
  TempDir dir;
  const auto csv = write_file(dir / "bad.csv", "text,label\nok,pos\nthree,fields,here\n");
  EXPECT_EQ(read_error(source(csv, "csv")), csv.string() + ":3: expected 2 fields, found 3");
  const auto quote = write_file(dir / "q.csv", "text,label\n\"never closed,pos\nmore\n");
  EXPECT_EQ(read_error(source(quote, "csv")), quote.string() + ":2: unterminated quoted field");
  const auto jl = write_file(dir / "bad.jsonl", "{\"text\": \"a\"}\n{oops\n");
  EXPECT_EQ(read_error(source(jl, "jsonl")), jl.string() + ":2: not valid JSON");
  const auto nofield = write_file(dir / "nf.jsonl", "{\"body\": \"a\"}\n");
  EXPECT_THAT(read_error(source(nofield, "jsonl")), HasSubstr("nf.jsonl:1: no string field 'text'"));
  const auto nocol = write_file(dir / "nc.csv", "body,label\nx,y\n");
  EXPECT_THAT(read_error(source(nocol, "csv")), HasSubstr("nc.csv:1: no column 'text'"));
}

TEST(Readers, SkipPolicyCountsMalformedRows) {
  TempDir dir;
  const auto csv = write_file(dir / "bad.csv", "text,label\nok,pos\nthree,fields,here\nfine,neg\n");
  auto s = source(csv, "csv");
  s.on_error = "skip";
  const auto c = text::read_corpus(s);
  EXPECT_EQ(c.documents.size(), 2u);
  EXPECT_EQ(c.skipped, 1u);
}

TEST(Readers, InvalidUtf8IsAnErrorWithLine) {
  TempDir dir;
  const auto f = write_file(dir / "u.txt", "fine\nbad \xff byte\n");
  EXPECT_EQ(read_error(source(f, "text")), f.string() + ":2: invalid UTF-8 at byte 4 of the text");
  auto skip = source(f, "text");
  skip.on_error = "skip";
  EXPECT_EQ(text::read_corpus(skip).documents.size(), 1u);
}

TEST(Readers, EmptyMissingAndLabelErrors) {
  TempDir dir;
  const auto empty = write_file(dir / "e.txt", "");
  EXPECT_EQ(read_error(source(empty, "text")), empty.string() + ": file is empty");
  const auto blank = write_file(dir / "b.txt", "\n  \n");
  EXPECT_THAT(read_error(source(blank, "text")), HasSubstr("no documents found"));
  EXPECT_THAT(read_error(source((dir / "none.txt").string(), "text")), HasSubstr("file not found"));
  const auto csv = write_file(dir / "l.csv", "text,label\na,pos\nb,meh\n");
  EXPECT_EQ(read_error(source(csv, "csv"), {"neg", "pos"}),
            csv.string() + ":3: unknown label 'meh' (known: neg, pos)");
}

TEST(Readers, LimitTakesASeededSubsetInFileOrder) {
  TempDir dir;
  std::string lines;
  for (int i = 0; i < 100; ++i) lines += "doc " + std::to_string(i) + "\n";
  auto s = source(write_file(dir / "many.txt", lines), "text");
  s.limit = 10;
  const auto a = texts(text::read_corpus(s, {}, 1));
  const auto b = texts(text::read_corpus(s, {}, 1));
  const auto c = texts(text::read_corpus(s, {}, 2));
  EXPECT_EQ(a.size(), 10u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Readers, BalancedLimitTakesAsManyOfEachLabel) {
  TempDir dir;
  // 80 % "pos": an unbalanced draw of 20 would rarely give 10 and 10.
  std::string csv = "text,label\n";
  for (int i = 0; i < 200; ++i) csv += "doc " + std::to_string(i) + "," + (i % 5 ? "pos" : "neg") + "\n";
  auto s = source(write_file(dir / "l.csv", csv), "csv");
  s.limit = 21;
  s.balanced = true;
  const auto corpus = text::read_corpus(s, {}, 3);
  ASSERT_EQ(corpus.documents.size(), 20u);  // 21 / 2 labels = 10 each, the rest dropped
  int neg = 0;
  for (const auto& d : corpus.documents) neg += d.label == 0;
  EXPECT_EQ(neg, 10);
  EXPECT_EQ(texts(corpus), texts(text::read_corpus(s, {}, 3)));
  s.limit = 100;  // 50 "neg" asked of 40
  EXPECT_THAT(read_error(s), HasSubstr("label 'neg' has 40 documents"));
}

TEST(Readers, CheckDataPathsNamesConfigKey) {
  config::Config cfg;
  cfg.data.valid.path = {"/no/such/file.txt"};
  cfg.locations["data.valid.path"] = "c.yaml:4:11";
  try {
    text::check_data_paths(cfg);
    FAIL() << "expected an error";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "c.yaml:4:11: data.valid.path: not found: /no/such/file.txt");
  }
}

TEST(Normalize, HtmlBreaksAndWhitespace) {
  EXPECT_EQ(text::normalize_document("  a<br />b<BR>c<br/>d\te\n", true), "a b c d e");
  EXPECT_EQ(text::normalize_document("a<br />b", false), "a<br />b");
  EXPECT_EQ(text::normalize_document("<b>bold</b>", true), "<b>bold</b>");
}

}  // namespace
}  // namespace ulmfit
