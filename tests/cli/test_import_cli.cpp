// ulmfit import through the CLI: an imported Hugging Face BERT or GPT-2 runs
// through adapt, finetune, evaluate, predict and generate like the toolkit's
// own runs, and bad
// model directories exit 2 with one line naming the file and the tensor or
// field, writing nothing.
#include <nlohmann/json.hpp>

#include <random>
#include <sstream>

#include "../conformance_paths.h"
#include "../test_helpers.h"
#include "cli_runner.h"
#include "ulmfit/config/loader.h"
#include "ulmfit/io/safetensors.h"
#include "ulmfit/util/files.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::write_file;

class CliImport : public ::testing::Test {
 protected:
  void SetUp() override {
    tiny_ = testing::fixtures_dir() / "tiny_bert";
    ULMFIT_REQUIRE_FIXTURE(tiny_ / "model.safetensors");
    ::setenv("ULMFIT_TINY_DATA", dir_.path().c_str(), 1);
    testing::write_tiny_corpora(dir_.path());
  }
  std::string cfg(const std::string& name) const { return std::string(ULMFIT_SOURCE_DIR) + "/configs/" + name; }
  std::string at(const std::string& name) const { return (dir_ / name).string(); }

  /// A copy of the tiny model directory to damage.
  fs::path copy_of_tiny(const std::string& name) {
    const auto d = dir_ / name;
    fs::create_directories(d);
    for (const auto& e : fs::directory_iterator(tiny_)) fs::copy_file(e.path(), d / e.path().filename());
    return d;
  }
  /// Runs import on `model_dir`: exit 2, one line naming every needle, no run written.
  void expect_refused(const fs::path& model_dir, const std::vector<std::string>& needles) {
    const auto out = dir_ / "refused-run";
    const auto r = cli_run("import --from " + model_dir.string() + " --out " + out.string(), dir_.path());
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const auto& n : needles) EXPECT_THAT(r.err, HasSubstr(n));
    EXPECT_FALSE(fs::exists(out)) << "a refused import wrote " << out;
  }

  testing::TempDir dir_;
  fs::path tiny_;
};

TEST_F(CliImport, ImportedBertAdaptsFinetunesEvaluatesAndPredicts) {
  const auto imported = cli_run("import --from " + tiny_.string() + " --out " + at("bert"), dir_.path());
  ASSERT_EQ(imported.code, 0) << imported.err;
  EXPECT_EQ(imported.out, at("bert") + "\n");
  EXPECT_THAT(imported.err, HasSubstr("not used: 4 tensors (cls.predictions.transform."));
  EXPECT_THAT(util::read_file(dir_ / "bert/config.yaml"), AllOf(HasSubstr("norm: \"post\""), HasSubstr("type_vocab_size: 2")));
  EXPECT_THAT(util::read_file(dir_ / "bert/meta.yaml"), HasSubstr("stage: import"));

  const auto adapted = cli_run("adapt --config " + cfg("tiny-hf-adapt.yaml") + " --from " + at("bert") + " --out " + at("adapted"), dir_.path());
  ASSERT_EQ(adapted.code, 0) << adapted.err;
  EXPECT_TRUE(fs::is_regular_file(dir_ / "adapted/tokenizer.json"));
  const auto lm_eval = cli_run("evaluate --model " + at("adapted") + " --data " + at("general-valid.txt") + " --json", dir_.path());
  ASSERT_EQ(lm_eval.code, 0) << lm_eval.err;
  EXPECT_GT(nlohmann::json::parse(lm_eval.out)["perplexity"].get<double>(), 1.0);

  const auto clf = cli_run("finetune --config " + cfg("tiny-hf-classifier.yaml") + " --from " + at("adapted") + " --out " + at("clf"), dir_.path());
  ASSERT_EQ(clf.code, 0) << clf.err;
  const auto eval = cli_run("evaluate --model " + at("clf") + " --data " + at("labelled.csv") + " --json", dir_.path());
  ASSERT_EQ(eval.code, 0) << eval.err;
  const auto report = nlohmann::json::parse(eval.out);
  EXPECT_EQ(report["documents"], 40);
  EXPECT_GE(report["accuracy"].get<double>(), 0.9) << eval.out;  // two sentences, each repeated 20 times
  const auto pred = cli_run("predict --model " + at("clf"), dir_.path(), "a great film, loved it\nboring, hated it\n");
  ASSERT_EQ(pred.code, 0) << pred.err;
  EXPECT_EQ(std::count(pred.out.begin(), pred.out.end(), '\n'), 2);
  // bf16 inference holds the encoder's weights in bf16 and the head's in fp32
  // (CPU BatchNorm takes bf16 inputs only with fp32 parameters): the same labels,
  // probabilities within bf16's rounding of fp32's.
  std::vector<nlohmann::json> by_precision;
  for (const char* precision : {"fp32", "bf16"}) {
    const auto p = cli_run("predict --model " + at("clf") + " --format csv --input " + at("labelled.csv") +
                               " --precision " + precision,
                           dir_.path());
    ASSERT_EQ(p.code, 0) << precision << ": " << p.err;
    by_precision.push_back(nlohmann::json::array());
    std::istringstream lines(p.out);
    for (std::string line; std::getline(lines, line);) by_precision.back().push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(by_precision[0].size(), 40U);
  ASSERT_EQ(by_precision[1].size(), 40U);
  for (std::size_t i = 0; i < 40; ++i) {
    EXPECT_EQ(by_precision[0][i]["label"], by_precision[1][i]["label"]) << i;
    EXPECT_NEAR(by_precision[0][i]["probabilities"]["pos"].get<double>(),
                by_precision[1][i]["probabilities"]["pos"].get<double>(), 0.03)
        << i;
  }

  // The fine-tuned encoder goes back out as a Hugging Face directory.
  const auto exported = cli_run("export --model " + at("clf") + " --out " + at("hf"), dir_.path());
  ASSERT_EQ(exported.code, 0) << exported.err;
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::is_regular_file(dir_ / "hf" / f)) << f;
  }
  EXPECT_EQ(nlohmann::json::parse(util::read_file(dir_ / "hf/config.json"))["architectures"][0], "BertModel")
      << "ULMFiT's head has no Hugging Face counterpart: the encoder alone";
  const auto again = cli_run("export --model " + at("clf") + " --out " + at("hf"), dir_.path());
  EXPECT_EQ(again.code, 2) << "a non-empty --out needs --overwrite";

  // With Hugging Face's head the classifier exports whole.
  const auto hf_head = cli_run("finetune --config " + cfg("tiny-hf-classifier.yaml") + " --from " + at("adapted") +
                                   " --out " + at("clf-hf") + " --set model.pooling=hugging_face --set train.epochs=1",
                               dir_.path());
  ASSERT_EQ(hf_head.code, 0) << hf_head.err;
  ASSERT_EQ(cli_run("export --model " + at("clf-hf") + " --out " + at("hf-clf"), dir_.path()).code, 0);
  const auto config = nlohmann::json::parse(util::read_file(dir_ / "hf-clf/config.json"));
  EXPECT_EQ(config["architectures"][0], "BertForSequenceClassification");
  EXPECT_EQ(config["id2label"]["1"], "pos");
}

TEST_F(CliImport, FinetuneFromAnImportNeedsOnlyTheDataAndKeepsWhatTheConfigSets) {
  ASSERT_EQ(cli_run("import --from " + tiny_.string() + " --out " + at("bert"), dir_.path()).code, 0);
  write_file(dir_ / "data-only.yaml",
             "seed: 7\nthreads: 1\ndata:\n  train: {path: \"" + at("labelled.csv") + "\", format: csv}\n"
             "  valid_split: 0.25\n");
  const auto plain = cli_run("finetune --config " + at("data-only.yaml") + " --from " + at("bert") + " --out " + at("clf"), dir_.path());
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_THAT(plain.err, HasSubstr("pretrained Transformer: the recipe sets what the config leaves out"));
  const auto recipe = config::load_config((dir_ / "clf" / "config.yaml").string());
  EXPECT_EQ(recipe.train.epochs, 4);
  EXPECT_EQ(recipe.train.freeze_to, (std::vector<int>{1, 0}));
  EXPECT_EQ(recipe.train.stage_lrs, (std::vector<double>{2e-3, 2e-4}));
  EXPECT_EQ(recipe.train.long_documents, "chunk");
  EXPECT_EQ(recipe.model.dropout.attention, 0.0);
  EXPECT_EQ(recipe.train.batch_size, 16);
  EXPECT_FALSE(recipe.model.head_batch_norm);

  // What the user sets wins, and a plain LR or unfreeze keeps the recipe's
  // stage LRs or unfreezing plan out.
  const auto own = cli_run("finetune --config " + at("data-only.yaml") + " --from " + at("bert") + " --out " +
                               at("own") + " --set train.lr=0.01 --set train.epochs=2 --set train.unfreeze=gradual",
                           dir_.path());
  ASSERT_EQ(own.code, 0) << own.err;
  const auto mine = config::load_config((dir_ / "own" / "config.yaml").string());
  EXPECT_EQ(mine.train.epochs, 2);
  EXPECT_TRUE(mine.train.stage_lrs.empty());
  EXPECT_TRUE(mine.train.freeze_to.empty());
  EXPECT_EQ(mine.train.unfreeze, "gradual");
  EXPECT_EQ(mine.train.batch_size, 16) << "keys the user left out still come from the recipe";
}

TEST_F(CliImport, ImportedGpt2AdaptsGeneratesFinetunesAndExports) {
  const auto gpt2 = testing::fixtures_dir() / "tiny_gpt2";
  ULMFIT_REQUIRE_FIXTURE(gpt2 / "model.safetensors");
  const auto imported = cli_run("import --from " + gpt2.string() + " --out " + at("gpt2"), dir_.path());
  ASSERT_EQ(imported.code, 0) << imported.err;
  EXPECT_THAT(imported.err, HasSubstr("(gpt2, "));
  EXPECT_THAT(util::read_file(dir_ / "gpt2/config.yaml"),
              AllOf(HasSubstr("backbone: \"transformer\""), HasSubstr("activation: \"gelu_tanh\"")));

  // Next-token adaptation (GPT-2's own objective), then generation from it.
  const auto adapted = cli_run("adapt --config " + cfg("tiny-hf-adapt.yaml") + " --from " + at("gpt2") + " --out " + at("adapted"), dir_.path());
  ASSERT_EQ(adapted.code, 0) << adapted.err;
  const auto lm_eval = cli_run("evaluate --model " + at("adapted") + " --data " + at("general-valid.txt") + " --json", dir_.path());
  ASSERT_EQ(lm_eval.code, 0) << lm_eval.err;
  EXPECT_GT(nlohmann::json::parse(lm_eval.out)["perplexity"].get<double>(), 1.0);
  const auto generated = cli_run("generate --model " + at("adapted") + " --prompt 'The film' --max-tokens 8", dir_.path());
  ASSERT_EQ(generated.code, 0) << generated.err;
  EXPECT_THAT(generated.out, HasSubstr("The film"));
  // GPT-2's head has no bias, so adaptation trains none and the export keeps everything.
  EXPECT_THAT(util::read_file(dir_ / "adapted/config.yaml"), HasSubstr("output_bias: false"));
  const auto lm_export = cli_run("export --model " + at("adapted") + " --out " + at("hf-lm"), dir_.path());
  ASSERT_EQ(lm_export.code, 0) << lm_export.err;
  EXPECT_THAT(lm_export.err, ::testing::Not(HasSubstr("output bias")));

  // Reviews of mixed lengths: GPT-2's BPE gives labelled.csv's two sentences
  // different lengths, so length-bucketed batches would each hold one class,
  // and the head's batch norm would erase the difference.
  std::mt19937 rng(3);
  const char* pos[] = {"great", "loved", "wonderful", "superb"};
  const char* neg[] = {"boring", "hated", "awful", "dull"};
  const char* filler[] = {"the", "film", "plot", "was", "music", "acting", "really", "and"};
  std::string csv = "text,label\n";
  for (int i = 0; i < 80; ++i) {
    std::string text;
    const int words = 3 + static_cast<int>(rng() % 8);
    for (int w = 0; w < words; ++w) text += std::string(w ? " " : "") + filler[rng() % 8];
    text += std::string(" ") + (i % 2 ? pos[rng() % 4] : neg[rng() % 4]);
    csv += text + (i % 2 ? ",pos\n" : ",neg\n");
  }
  write_file(dir_ / "varied.csv", csv);
  const auto clf = cli_run("finetune --config " + cfg("tiny-hf-classifier.yaml") + " --from " + at("adapted") +
                           " --out " + at("clf") + " --set data.train.path=" + at("varied.csv") + " --set train.epochs=6 --set precision=fp32",
                           dir_.path());
  ASSERT_EQ(clf.code, 0) << clf.err;
  const auto eval = cli_run("evaluate --model " + at("clf") + " --data " + at("varied.csv") + " --json", dir_.path());
  ASSERT_EQ(eval.code, 0) << eval.err;
  // A small random GPT-2, not a pretrained one: well above chance (80
  // reviews), predicting both classes, is what it shows.
  const auto report = nlohmann::json::parse(eval.out);
  EXPECT_GE(report["accuracy"].get<double>(), 0.75) << eval.out;
  for (int c = 0; c < 2; ++c) {
    EXPECT_GT(report["confusion"][0][c].get<int>() + report["confusion"][1][c].get<int>(), 0) << eval.out;
  }

  const auto exported = cli_run("export --model " + at("clf") + " --out " + at("hf"), dir_.path());
  ASSERT_EQ(exported.code, 0) << exported.err;
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "vocab.json", "merges.txt",
                        "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::is_regular_file(dir_ / "hf" / f)) << f;
  }
  EXPECT_EQ(nlohmann::json::parse(util::read_file(dir_ / "hf/config.json"))["vocab_size"], 2000)
      << "the toolkit's added special tokens stay behind";
}

TEST_F(CliImport, ExportRefusesRunsWithoutAHuggingFaceLayout) {
  const auto lm = cli_run("pretrain --config " + cfg("tiny-lm.yaml") + " --out " + at("lm"), dir_.path());
  ASSERT_EQ(lm.code, 0) << lm.err;
  const auto r = cli_run("export --model " + at("lm") + " --out " + at("hf"), dir_.path());
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr(at("lm")), HasSubstr("model.backbone awd_lstm"), HasSubstr("no Hugging Face layout")));
  EXPECT_FALSE(fs::exists(dir_ / "hf"));
}

TEST_F(CliImport, BadModelDirectoriesExitTwoNamingTheFileAndWriteNothing) {
  fs::create_directories(dir_ / "empty");
  expect_refused(dir_ / "empty", {"empty: no config.json"});

  const auto type = copy_of_tiny("type");
  auto config = nlohmann::json::parse(util::read_file(type / "config.json"));
  config["model_type"] = "xlnet";
  write_file(type / "config.json", config.dump());
  expect_refused(type, {"type/config.json", "model_type xlnet is not supported"});

  const auto vocab = copy_of_tiny("vocab");
  config = nlohmann::json::parse(util::read_file(vocab / "config.json"));
  config["vocab_size"] = 30000;
  write_file(vocab / "config.json", config.dump());
  expect_refused(vocab, {"vocab/model.safetensors", "embeddings.word_embeddings.weight", "vocab_size 30000"});

  const auto truncated = copy_of_tiny("truncated");
  const auto bytes = util::read_file(truncated / "model.safetensors");
  write_file(truncated / "model.safetensors", bytes.substr(0, bytes.size() / 2));
  expect_refused(truncated, {"truncated/model.safetensors", "tensor "});

  auto tensors = io::read_safetensors((tiny_ / "model.safetensors").string());
  const auto missing = copy_of_tiny("missing");
  tensors.erase("bert.encoder.layer.1.output.dense.weight");
  io::write_safetensors((missing / "model.safetensors").string(), tensors);
  expect_refused(missing, {"missing/model.safetensors", "tensor encoder.layer.1.output.dense.weight is missing"});

  // A header that says a tensor is larger than its bytes.
  const auto lying = copy_of_tiny("lying");
  const auto good = util::read_file(tiny_ / "model.safetensors");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(good[static_cast<std::size_t>(i)]);
  auto header = nlohmann::json::parse(good.substr(8, n));
  header["bert.embeddings.LayerNorm.bias"]["shape"] = {128};
  auto text = header.dump();
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xFF);
  write_file(lying / "model.safetensors", prefix + text + good.substr(8 + n));
  expect_refused(lying, {"lying/model.safetensors", "tensor bert.embeddings.LayerNorm.bias"});

  const auto unigram = copy_of_tiny("unigram");
  auto tok = nlohmann::json::parse(util::read_file(unigram / "tokenizer.json"));
  tok["model"]["type"] = "Unigram";
  write_file(unigram / "tokenizer.json", tok.dump());
  expect_refused(unigram, {"unigram/tokenizer.json", "model.type Unigram is not supported"});

  // A BPE model with WordPiece's continuation prefix is not GPT-2's byte-level BPE.
  const auto bpe = copy_of_tiny("bpe");
  tok = nlohmann::json::parse(util::read_file(bpe / "tokenizer.json"));
  tok["model"]["type"] = "BPE";
  write_file(bpe / "tokenizer.json", tok.dump());
  expect_refused(bpe, {"bpe/tokenizer.json", "model.continuing_subword_prefix \"##\" is not supported"});
}

}  // namespace
}  // namespace ulmfit
