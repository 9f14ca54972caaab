// Bad input of every kind through the real binary: configs, data files and
// run directories. Each must end with exit 2 and one "error:" line naming
// what is wrong and where, and must leave what was already written intact.
#include <algorithm>
#include <fstream>

#include "../test_helpers.h"
#include "cli_runner.h"
#include "ulmfit/util/files.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::write_file;

std::size_t error_lines(const std::string& err) {
  std::size_t n = 0;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) n += line.rfind("error:", 0) == 0;
  return n;
}

class CliBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("ULMFIT_TINY_DATA", dir_.path().c_str(), 1);
    std::string general;
    for (const auto& d : testing::tiny_documents(80, 1)) general += d + "\n";
    write_file(dir_ / "general.txt", general);
    write_file(dir_ / "general-valid.txt", general.substr(0, 400) + "\n");
    write_file(dir_ / "domain.txt", general);
    std::string csv = "text,label\n";
    for (int i = 0; i < 24; ++i) csv += i % 2 ? "\"great, loved it\",pos\n" : "\"boring, hated it\",neg\n";
    write_file(dir_ / "labelled.csv", csv);
  }

  std::string cfg(const std::string& name) const { return std::string(ULMFIT_SOURCE_DIR) + "/configs/" + name; }
  std::string at(const std::string& name) const { return (dir_ / name).string(); }

  /// A trained LM ("lm") and classifier ("clf") to corrupt copies of.
  void train_runs() {
    const auto lm = cli_run("pretrain --config " + cfg("tiny-lm.yaml") + " --set train.epochs=1 --out " + at("lm"), dir_.path());
    ASSERT_EQ(lm.code, 0) << lm.err;
    const auto clf = cli_run("finetune --config " + cfg("tiny-classifier.yaml") + " --set train.epochs=1 --from " +
                                 at("lm") + " --out " + at("clf"),
                             dir_.path());
    ASSERT_EQ(clf.code, 0) << clf.err;
  }

  /// A copy of a trained run to damage.
  std::string copy_run(const std::string& from, const std::string& to) {
    fs::copy(dir_ / from, dir_ / to, fs::copy_options::recursive);
    return at(to);
  }

  /// Runs a command that must fail as bad input: exit 2, one error line with
  /// every expected fragment.
  void expect_bad_input(const std::string& args, const std::vector<std::string>& fragments) {
    SCOPED_TRACE(args);
    const auto r = cli_run(args, dir_.path());
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(error_lines(r.err), 1u) << r.err;
    for (const auto& f : fragments) EXPECT_THAT(r.err, HasSubstr(f));
  }

  testing::TempDir dir_;
};

TEST_F(CliBadInput, ConfigValues) {
  const std::string pretrain = "pretrain --config " + cfg("tiny-lm.yaml") + " --out " + at("never") + " --set ";
  expect_bad_input(pretrain + "train.bptt=0", {"train.bptt: must be >= 1, got 0"});
  expect_bad_input(pretrain + "model.dropout.embed=-0.1", {"model.dropout.embed: must be in [0, 1), got -0.1"});
  expect_bad_input(pretrain + "train.batch_size=lots", {"train.batch_size: expected an integer, got 'lots'"});
  expect_bad_input(pretrain + "train.epocs=3", {"train.epocs: unknown key"});
  expect_bad_input(pretrain + "train.on_nonfinite=ignore", {"train.on_nonfinite: must be one of stop | skip"});
  write_file(dir_ / "broken.yaml", "seed: 1\ntrain: {epochs: 2\n");
  expect_bad_input("pretrain --config " + at("broken.yaml"), {at("broken.yaml") + ":"});
  write_file(dir_ / "negative.yaml", "model:\n  emb_size: -8\n");
  expect_bad_input("pretrain --config " + at("negative.yaml"), {at("negative.yaml") + ":2:", "model.emb_size"});
  EXPECT_FALSE(fs::exists(dir_ / "never")) << "a refused config wrote a run directory";
}

TEST_F(CliBadInput, DataFiles) {
  const std::string pretrain = "pretrain --config " + cfg("tiny-lm.yaml") + " --out " + at("never") + " --overwrite --set ";
  write_file(dir_ / "bad-utf8.txt", "fine line\nbroken \xC3\x28 here\n");
  expect_bad_input(pretrain + "data.train.path=" + at("bad-utf8.txt"), {"bad-utf8.txt:2: invalid UTF-8 at byte 7"});
  std::string binary = "\x1f\x8b\x08";
  binary += std::string(64, '\0') + "payload";
  write_file(dir_ / "archive.bin", binary);
  expect_bad_input(pretrain + "data.train.path=" + at("archive.bin"), {"archive.bin: looks like a binary file (NUL byte at offset 3)"});
  write_file(dir_ / "blank.txt", "\n   \n\t\n");
  expect_bad_input(pretrain + "data.train.path=" + at("blank.txt"), {"blank.txt: no documents found"});
  write_file(dir_ / "empty.txt", "");
  expect_bad_input(pretrain + "data.train.path=" + at("empty.txt"), {"empty.txt: file is empty"});

  const std::string finetune = "finetune --config " + cfg("tiny-classifier.yaml") + " --out " + at("never") + " --overwrite --set ";
  write_file(dir_ / "bad.csv", "text,label\n\"good\",pos\n\"unterminated,neg\n");
  expect_bad_input(finetune + "data.train.path=" + at("bad.csv"), {"bad.csv:3:", "quote"});
  write_file(dir_ / "short.csv", "text,label\nonly-one-field\n");
  expect_bad_input(finetune + "data.train.path=" + at("short.csv"), {"short.csv:2:"});
  write_file(dir_ / "bad.jsonl", "{\"text\": \"ok\", \"label\": \"pos\"}\n{\"text\": \"cut off\n");
  expect_bad_input(finetune + "data.train.path=" + at("bad.jsonl") + " data.train.format=jsonl", {"bad.jsonl:2:"});
  write_file(dir_ / "one-label.csv", "text,label\na,pos\nb,pos\n");
  expect_bad_input(finetune + "data.train.path=" + at("one-label.csv") + " data.valid_split=0", {"at least two labels"});
  // Data is read before the run directory is made: nothing half-made is left.
  EXPECT_FALSE(fs::exists(dir_ / "never"));

  // A 10 MB single line is not an error: it is read and tokenised whole.
  train_runs();
  std::string big;
  big.reserve(10'000'100);
  while (big.size() < 10'000'000) big += "the film was great and the music was fun ";
  write_file(dir_ / "big.txt", big + "\n");
  const auto encoded = cli_run("tokenizer encode --model " + at("lm/tokenizer.model") + " --input " + at("big.txt"), dir_.path());
  ASSERT_EQ(encoded.code, 0) << encoded.err;
  EXPECT_GT(std::count(encoded.out.begin(), encoded.out.end(), ' '), 1'000'000);

  // Bad data with --overwrite fails before the old run is touched.
  const std::string old_weights = util::read_file(dir_ / "lm/model.pt");
  expect_bad_input("pretrain --config " + cfg("tiny-lm.yaml") + " --out " + at("lm") + " --overwrite --set data.train.path=" +
                       at("bad-utf8.txt"),
                   {"bad-utf8.txt:2:"});
  EXPECT_EQ(util::read_file(dir_ / "lm/model.pt"), old_weights);

  // Labels the classifier was not trained on.
  write_file(dir_ / "new-label.csv", "text,label\n\"great\",pos\n\"meh\",neutral\n");
  expect_bad_input("evaluate --model " + at("clf") + " --data " + at("new-label.csv"),
                   {"new-label.csv:3:", "neutral", "neg, pos"});
}

TEST_F(CliBadInput, RunDirectories) {
  train_runs();
  // An output directory that cannot be created (a file stands in the way).
  expect_bad_input("pretrain --config " + cfg("tiny-lm.yaml") + " --out " + at("general.txt") + "/run",
                   {"general.txt/run: cannot create run directory", "(--out)"});
  expect_bad_input("evaluate --model " + at("nowhere") + " --data " + at("labelled.csv"), {"nowhere: run directory not found"});

  const auto missing = copy_run("clf", "missing");
  fs::remove(dir_ / "missing/model.pt");
  expect_bad_input("evaluate --model " + missing + " --data " + at("labelled.csv"), {"missing/model.pt: weights file not found"});

  const auto truncated = copy_run("clf", "truncated");
  const auto size = fs::file_size(dir_ / "truncated/model.pt");
  fs::resize_file(dir_ / "truncated/model.pt", size / 2);
  expect_bad_input("evaluate --model " + truncated + " --data " + at("labelled.csv"),
                   {"truncated/model.pt: corrupt or truncated weights file"});

  const auto flipped = copy_run("clf", "flipped");
  {
    std::fstream f(dir_ / "flipped/model.pt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(size / 2));
    c = static_cast<char>(c ^ 0x10);
    f.write(&c, 1);
  }
  expect_bad_input("evaluate --model " + flipped + " --data " + at("labelled.csv"),
                   {"flipped/model.pt: damaged weights file (checksum mismatch)"});

  const auto bad_checkpoint = copy_run("lm", "bad-checkpoint");
  const auto checkpoint = dir_ / "bad-checkpoint/state/checkpoint.pt";
  fs::resize_file(checkpoint, fs::file_size(checkpoint) - 100);
  expect_bad_input("pretrain --resume " + bad_checkpoint, {"bad-checkpoint/state/checkpoint.pt: corrupt or truncated"});

  expect_bad_input("adapt --config " + cfg("tiny-adapt.yaml") + " --from " + at("clf") + " --out " + at("never"),
                   {"is a classifier run, but adapt needs a language model run"});
  expect_bad_input("generate --model " + at("clf") + " --prompt the", {"clf: generate needs a language model run"});

  const auto newer = copy_run("lm", "newer");
  auto meta = util::read_file(dir_ / "newer/meta.yaml");
  meta.replace(meta.find("format_version: 1"), 17, "format_version: 99");
  write_file(dir_ / "newer/meta.yaml", meta);
  expect_bad_input("evaluate --model " + newer + " --data " + at("general-valid.txt"),
                   {"newer/meta.yaml: written by a newer ulmfit (run format 99"});

  const auto no_config = copy_run("lm", "no-config");
  write_file(dir_ / "no-config/config.yaml", "train: [this is not a map\n");
  expect_bad_input("evaluate --model " + no_config + " --data " + at("general-valid.txt"), {"no-config/config.yaml"});

  // Another tokenizer (another vocabulary) beside the weights.
  const auto other_vocab = copy_run("lm", "other-vocab");
  const auto tok = cli_run("tokenizer train --config " + cfg("tiny-lm.yaml") + " --set tokenizer.vocab_size=60 --out " +
                               at("other-vocab/tokenizer.model"),
                           dir_.path());
  ASSERT_EQ(tok.code, 0) << tok.err;
  expect_bad_input("finetune --config " + cfg("tiny-classifier.yaml") + " --from " + other_vocab + " --out " + at("never"),
                   {"other-vocab/model.pt", "in the file but", "another architecture or vocabulary"});
  EXPECT_FALSE(fs::exists(dir_ / "never/model.pt"));
}

}  // namespace
}  // namespace ulmfit
