// Conformance with the Hugging Face libraries (fixtures from
// tests/conformance/make_fixtures.py with pinned tokenizers / transformers):
// WordPiece and byte-level BPE ids on every IMDB test review and on edge
// cases, the imported models' hidden states or logits, and exports that
// transformers loads.
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "../conformance_paths.h"
#include "../test_helpers.h"
#include "ulmfit/interop/hugging_face.h"
#include "ulmfit/io/safetensors.h"
#include "ulmfit/nn/model_factory.h"
#include "ulmfit/pipeline/run_dir.h"
#include "ulmfit/text/tokenizer.h"
#include "ulmfit/text/wordpiece.h"
#include "ulmfit/util/error.h"
#include "ulmfit/util/files.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;
using testing::fixtures_dir;
using testing::minilm_dir;

std::vector<int> to_original(const text::Tokenizer& tok, const std::vector<int>& ids) {
  std::vector<int> out;
  out.reserve(ids.size());
  for (int id : ids) out.push_back(tok.original_id(id));
  return out;
}

TEST(WordPieceTokenizer, SpecialTokensTakeTheToolkitIds) {
  ULMFIT_REQUIRE_FIXTURE(minilm_dir() / "tokenizer.json");
  const auto tok = text::Tokenizer::load_hugging_face(minilm_dir().string());
  EXPECT_EQ(tok.vocab_size(), 30522);
  EXPECT_EQ(tok.piece(text::SpecialIds::kPad), "[PAD]");
  EXPECT_EQ(tok.piece(text::SpecialIds::kUnk), "[UNK]");
  EXPECT_EQ(tok.piece(text::SpecialIds::kBos), "[CLS]");
  EXPECT_EQ(tok.piece(text::SpecialIds::kEos), "[SEP]");
  EXPECT_EQ(tok.piece(text::SpecialIds::kMask), "[MASK]");
  // A permutation: every original id exactly once.
  std::vector<int> seen(30522, 0);
  for (int i = 0; i < tok.vocab_size(); ++i) ++seen[static_cast<std::size_t>(tok.original_id(i))];
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 30522);
  EXPECT_EQ(tok.decode(tok.encode("A wonderful, moving film. I didn't expect it!")),
            "a wonderful, moving film. i didn't expect it!");
  EXPECT_EQ(tok.file_name(), std::string("tokenizer.json"));
}

TEST(WordPieceTokenizer, VocabTxtGivesTheSameIdsAsTokenizerJson) {
  ULMFIT_REQUIRE_FIXTURE(minilm_dir() / "vocab.txt");
  testing::TempDir dir;
  fs::copy_file(minilm_dir() / "vocab.txt", dir / "vocab.txt");
  const auto from_vocab = text::Tokenizer::load_hugging_face(dir.path().string());
  const auto from_json = text::Tokenizer::load_hugging_face(minilm_dir().string());
  const std::string text = "Ça m'a plu: 10/10, the BEST film of 2009 [SEP] really";
  EXPECT_EQ(from_vocab.encode(text), from_json.encode(text));
  // What a run saves loads back to the same tokenizer.
  from_vocab.save_into_run(dir.path().string());
  EXPECT_EQ(text::Tokenizer::load_from_run(dir.path().string()).encode(text), from_json.encode(text));
}

TEST(WordPieceTokenizer, IdsEqualTheTokenizersLibraryOnEdgeCases) {
  const auto fixture = fixtures_dir() / "minilm_edge_case_ids.json";
  ULMFIT_REQUIRE_FIXTURE(fixture);
  const auto tok = text::Tokenizer::load_hugging_face(minilm_dir().string());
  const auto cases = nlohmann::json::parse(util::read_file(fixture));
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    const auto text = c["text"].get<std::string>();
    EXPECT_EQ(to_original(tok, tok.encode(text)), c["ids"].get<std::vector<int>>()) << "text: " << text;
  }
}

/// Every IMDB test review through `tok`, against the ids in `fixture` (path, tab, ids).
void expect_ids_on_every_imdb_test_review(const text::Tokenizer& tok, const fs::path& fixture) {
  const auto imdb = testing::data_dir() / "imdb" / "aclImdb";
  std::vector<std::string> paths, texts;
  std::vector<std::vector<int>> expected;
  std::ifstream in(fixture);
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos);
    paths.push_back(line.substr(0, tab));
    std::istringstream ids(line.substr(tab + 1));
    expected.emplace_back(std::istream_iterator<int>(ids), std::istream_iterator<int>());
    texts.push_back(util::read_file(imdb / paths.back()));
  }
  ASSERT_EQ(texts.size(), 25000u);
  const auto got = tok.encode_batch(texts, 2);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (to_original(tok, got[i]) != expected[i]) {
      if (++differ <= 3) ADD_FAILURE() << paths[i] << ": ids differ from the tokenizers library's";
    }
  }
  EXPECT_EQ(differ, 0u);
}

TEST(WordPieceTokenizer, IdsEqualTheTokenizersLibraryOnEveryImdbTestReview) {
  const auto fixture = fixtures_dir() / "minilm_test_ids.tsv";
  ULMFIT_REQUIRE_FIXTURE(fixture);
  expect_ids_on_every_imdb_test_review(text::Tokenizer::load_hugging_face(minilm_dir().string()), fixture);
}

TEST(ByteLevelBpeTokenizer, SpecialTokensTakeTheToolkitIdsAndTheMissingOnesAreAdded) {
  ULMFIT_REQUIRE_FIXTURE(fixtures_dir() / "bpe" / "tokenizer.json");
  const auto tok = text::Tokenizer::load_hugging_face((fixtures_dir() / "bpe").string());
  EXPECT_EQ(tok.original_vocab_size(), 2000);
  EXPECT_EQ(tok.vocab_size(), 2004);  // pad, unk, eos and mask are new
  EXPECT_EQ(tok.piece(text::SpecialIds::kBos), "<|endoftext|>");
  EXPECT_EQ(tok.piece(text::SpecialIds::kPad), "<pad>");
  EXPECT_EQ(tok.piece(text::SpecialIds::kMask), "<mask>");
  for (int special : {text::SpecialIds::kPad, text::SpecialIds::kUnk, text::SpecialIds::kEos, text::SpecialIds::kMask}) {
    EXPECT_GE(tok.original_id(special), 2000) << special;
  }
  std::vector<int> seen(2004, 0);
  for (int i = 0; i < tok.vocab_size(); ++i) ++seen[static_cast<std::size_t>(tok.original_id(i))];
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 2004);
  // Byte-level BPE loses nothing: decoding gives the text back, byte for byte.
  const std::string text = "  Ça m'a plu: 10/10 😍 <|endoftext|>\tthe END\n";
  auto ids = tok.encode(text);
  EXPECT_NE(std::find(ids.begin(), ids.end(), text::SpecialIds::kBos), ids.end()) << "the special token in the text";
  EXPECT_EQ(tok.decode(ids), "  Ça m'a plu: 10/10 😍 \tthe END\n");
  ids.insert(ids.begin(), text::SpecialIds::kPad);
  EXPECT_EQ(tok.decode(ids), "  Ça m'a plu: 10/10 😍 \tthe END\n") << "toolkit specials are not text";
}

TEST(ByteLevelBpeTokenizer, IdsEqualTheTokenizersLibraryOnEdgeCases) {
  const auto fixture = fixtures_dir() / "bpe_edge_case_ids.json";
  ULMFIT_REQUIRE_FIXTURE(fixture);
  const auto tok = text::Tokenizer::load_hugging_face((fixtures_dir() / "bpe").string());
  const auto cases = nlohmann::json::parse(util::read_file(fixture));
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    const auto text = c["text"].get<std::string>();
    const auto ids = tok.encode(text);
    EXPECT_EQ(to_original(tok, ids), c["ids"].get<std::vector<int>>()) << "text: " << text;
    EXPECT_EQ(tok.decode(ids), text);
  }
}

TEST(ByteLevelBpeTokenizer, IdsEqualTheTokenizersLibraryOnEveryImdbTestReview) {
  const auto fixture = fixtures_dir() / "bpe_test_ids.tsv";
  ULMFIT_REQUIRE_FIXTURE(fixture);
  expect_ids_on_every_imdb_test_review(text::Tokenizer::load_hugging_face((fixtures_dir() / "bpe").string()), fixture);
}

TEST(ByteLevelBpeTokenizer, RefusesTokenizersItDoesNotImplementByName) {
  auto refuse = [](const std::string& json, const std::string& needle) {
    testing::TempDir dir;
    util::write_file_atomic(dir / "tokenizer.json", json);
    try {
      text::Tokenizer::load((dir / "tokenizer.json").string());
      ADD_FAILURE() << "accepted: " << json;
    } catch (const CheckpointError& e) {
      EXPECT_THAT(std::string(e.what()), ::testing::AllOf(::testing::HasSubstr("tokenizer.json"), ::testing::HasSubstr(needle)));
    }
  };
  refuse(R"({"model": {"type": "Unigram", "vocab": []}})", "model.type Unigram is not supported");
  refuse(R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"}})",
         "pre_tokenizer Metaspace");
  refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1},
             "pre_tokenizer": {"type": "ByteLevel"}})", "model.dropout 0.1");
  refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 2}, "merges": []},
             "pre_tokenizer": {"type": "ByteLevel"}})", "no token has id 1");
  refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "c"]]},
             "pre_tokenizer": {"type": "ByteLevel"}})", "merge \"a c\"");
  // Fields of the wrong type are named, not thrown as the JSON library's own errors.
  refuse(R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": true}})",
         "pre_tokenizer.type must be a string, not true");
  refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1000000000}, "merges": []},
             "pre_tokenizer": {"type": "ByteLevel"}})", "model.vocab.b must be an integer from 0 to");
  refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": "yes"},
             "pre_tokenizer": {"type": "ByteLevel"}})", "model.byte_fallback must be true or false");
  refuse(R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}, "unk_token": 5},
             "pre_tokenizer": {"type": "BertPreTokenizer"}})", "model.unk_token must be a string, not 5");
  refuse(R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}, "normalizer": 3,
             "pre_tokenizer": {"type": "BertPreTokenizer"}})", "normalizer.type");
}

/// Imports `hf_dir`, then compares the encoder's outputs on the fixture's
/// padded batch with the transformers library's, at every real position.
double max_hidden_difference(const fs::path& hf_dir, const fs::path& fixture, const fs::path& run_dir,
                             torch::Tensor* decoder_bias_difference = nullptr) {
  interop::import_hugging_face({hf_dir.string(), run_dir.string(), false});
  auto run = pipeline::RunDir::open(run_dir.string());
  const auto cfg = run.read_config();
  const auto tok = text::Tokenizer::load_from_run(run_dir.string());
  auto model = nn::make_language_model(cfg.model, tok.vocab_size());
  run.load_weights(*model, "model.pt");
  model->eval();
  const auto f = io::read_safetensors(fixture.string());
  std::vector<std::int64_t> from_original(static_cast<std::size_t>(tok.vocab_size()));
  for (int i = 0; i < tok.vocab_size(); ++i) from_original[static_cast<std::size_t>(tok.original_id(i))] = i;
  const auto tokens = torch::tensor(from_original).index({f.at("input_ids")});
  const auto mask = f.at("attention_mask").to(torch::kBool);
  torch::NoGradGuard no_grad;
  nn::RecurrentState state;
  const auto ours = model->encoder->forward(tokens, state);
  if (decoder_bias_difference) {
    std::vector<std::int64_t> toolkit_order;  // original id of each toolkit id
    for (int i = 0; i < tok.vocab_size(); ++i) toolkit_order.push_back(tok.original_id(i));
    const auto expected = f.at("decoder_bias").index({torch::tensor(toolkit_order)});
    *decoder_bias_difference = (model->decoder_bias - expected).abs().max();
  }
  const auto diff = (ours - f.at("last_hidden_state")).abs().amax(-1).masked_select(mask);
  return diff.max().item<double>();
}

TEST(HuggingFaceImport, MiniLmHiddenStatesEqualTransformersOnAPaddedBatch) {
  const auto fixture = fixtures_dir() / "minilm_hidden.safetensors";
  ULMFIT_REQUIRE_FIXTURE(fixture);
  testing::TempDir dir;
  const double diff = max_hidden_difference(minilm_dir(), fixture, dir / "run");
  std::cout << "MiniLM: max abs difference from transformers " << diff << "\n";
  EXPECT_LT(diff, 1e-4);
  const auto f = io::read_safetensors(fixture.string());
  EXPECT_EQ(f.at("input_ids").size(0), 100);
  EXPECT_GT(f.at("attention_mask").sum(1).max().item<int64_t>(), 4 * f.at("attention_mask").sum(1).min().item<int64_t>())
      << "the batch should mix short and long reviews";
  for (const char* file : {"config.yaml", "meta.yaml", "tokenizer.json", "model.pt"}) {
    EXPECT_TRUE(fs::is_regular_file(dir / "run" / file)) << file;
  }
}

TEST(HuggingFaceImport, MaskedLmCheckpointKeepsItsHeadBiasAndPrefixedNames) {
  const auto fixture = fixtures_dir() / "tiny_bert_hidden.safetensors";
  ULMFIT_REQUIRE_FIXTURE(fixture);
  testing::TempDir dir;
  torch::Tensor bias_diff;
  EXPECT_LT(max_hidden_difference(fixtures_dir() / "tiny_bert", fixture, dir / "run", &bias_diff), 1e-4);
  EXPECT_EQ(bias_diff.item<double>(), 0.0);
}

TEST(HuggingFaceImport, DistilBertHiddenStatesAndHeadBiasEqualTransformers) {
  const auto fixture = fixtures_dir() / "tiny_distilbert_hidden.safetensors";
  ULMFIT_REQUIRE_FIXTURE(fixture);
  testing::TempDir dir;
  torch::Tensor bias_diff;
  EXPECT_LT(max_hidden_difference(fixtures_dir() / "tiny_distilbert", fixture, dir / "run", &bias_diff), 1e-4);
  EXPECT_EQ(bias_diff.item<double>(), 0.0);
  const auto cfg = pipeline::RunDir::open((dir / "run").string()).read_config();
  EXPECT_EQ(cfg.model.type_vocab_size, 0);
  EXPECT_EQ(cfg.model.norm, "post");
}

/// The imported GPT-2's logits on the fixture's batch against transformers',
/// over the tokenizer file's vocabulary, at every real position.
double max_gpt2_logit_difference(const fs::path& hf_dir, const fs::path& fixture, const fs::path& run_dir) {
  interop::import_hugging_face({hf_dir.string(), run_dir.string(), false});
  auto run = pipeline::RunDir::open(run_dir.string());
  const auto tok = text::Tokenizer::load_from_run(run_dir.string());
  auto model = nn::make_language_model(run.read_config().model, tok.vocab_size());
  run.load_weights(*model, "model.pt");
  model->eval();
  const auto f = io::read_safetensors(fixture.string());
  std::vector<std::int64_t> from_original(static_cast<std::size_t>(tok.vocab_size()));
  for (int i = 0; i < tok.vocab_size(); ++i) from_original[static_cast<std::size_t>(tok.original_id(i))] = i;
  const auto toolkit_ids = torch::tensor(from_original);
  const auto mask = f.at("attention_mask").to(torch::kBool);
  // Padding is the toolkit's pad id, which the model masks out.
  const auto tokens = toolkit_ids.index({f.at("input_ids")}).masked_fill(mask.logical_not(), text::SpecialIds::kPad);
  torch::NoGradGuard no_grad;
  nn::RecurrentState state;
  const auto logits = model->forward(tokens, state).logits;
  const auto file_columns = logits.index_select(-1, toolkit_ids.slice(0, 0, tok.original_vocab_size()));
  return (file_columns - f.at("logits")).abs().amax(-1).masked_select(mask).max().item<double>();
}

TEST(HuggingFaceImport, Gpt2LogitsEqualTransformersOnARightPaddedBatch) {
  const auto fixture = fixtures_dir() / "tiny_gpt2_logits.safetensors";
  ULMFIT_REQUIRE_FIXTURE(fixture);
  testing::TempDir dir;
  const double diff = max_gpt2_logit_difference(fixtures_dir() / "tiny_gpt2", fixture, dir / "run");
  std::cout << "GPT-2: max abs logit difference from transformers " << diff << "\n";
  EXPECT_LT(diff, 1e-4);
  const auto cfg = pipeline::RunDir::open((dir / "run").string()).read_config();
  EXPECT_EQ(cfg.model.backbone, "transformer");
  EXPECT_EQ(cfg.model.norm, "pre");
  EXPECT_EQ(cfg.model.activation, "gelu_tanh");
}

/// Import, export, and import again: the export holds the checkpoint's
/// tensors bit for bit, and the two imports have bit-identical weights.
void expect_round_trip(const fs::path& hf_dir, const std::string& prefix, std::size_t tensors) {
  testing::TempDir dir;
  interop::import_hugging_face({hf_dir.string(), (dir / "a").string(), false});
  EXPECT_EQ(interop::export_hugging_face({(dir / "a").string(), (dir / "hf").string(), false}), tensors);
  const auto original = io::read_safetensors((hf_dir / "model.safetensors").string());
  const auto exported = io::read_safetensors((dir / "hf" / "model.safetensors").string());
  for (const auto& [name, t] : exported) {
    const auto it = original.count(name) ? original.find(name) : original.find(prefix + name);
    ASSERT_NE(it, original.end()) << name;
    EXPECT_TRUE(torch::equal(it->second, t)) << name;
  }
  interop::import_hugging_face({(dir / "hf").string(), (dir / "b").string(), false});
  const auto a = pipeline::RunDir::open((dir / "a").string()), b = pipeline::RunDir::open((dir / "b").string());
  const auto vocab = text::Tokenizer::load_from_run((dir / "a").string()).vocab_size();
  auto ma = nn::make_language_model(a.read_config().model, vocab);
  auto mb = nn::make_language_model(b.read_config().model, vocab);
  a.load_weights(*ma, "model.pt");
  b.load_weights(*mb, "model.pt");
  const auto pb = mb->named_parameters();
  for (const auto& p : ma->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  EXPECT_EQ(util::read_file(dir / "a" / "tokenizer.json"), util::read_file(dir / "b" / "tokenizer.json"));
}

TEST(HuggingFaceExport, DistilBertAndGpt2RoundTripBitForBit) {
  ULMFIT_REQUIRE_FIXTURE(fixtures_dir() / "tiny_gpt2" / "model.safetensors");
  ULMFIT_REQUIRE_FIXTURE(fixtures_dir() / "tiny_distilbert" / "model.safetensors");
  expect_round_trip(fixtures_dir() / "tiny_distilbert", "distilbert.", 4u + 2u * 16u + 1u);
  expect_round_trip(fixtures_dir() / "tiny_gpt2", "transformer.", 2u + 2u * 12u + 2u);
}

TEST(HuggingFaceExport, Gpt2ExportCarriesVocabJsonAndMergesGivingTheSameIds) {
  ULMFIT_REQUIRE_FIXTURE(fixtures_dir() / "tiny_gpt2" / "model.safetensors");
  testing::TempDir dir;
  interop::import_hugging_face({(fixtures_dir() / "tiny_gpt2").string(), (dir / "run").string(), false});
  interop::export_hugging_face({(dir / "run").string(), (dir / "hf").string(), false});
  fs::remove(dir / "hf" / "tokenizer.json");
  const auto from_files = text::Tokenizer::load_hugging_face((dir / "hf").string());
  const auto original = text::Tokenizer::load_hugging_face((fixtures_dir() / "tiny_gpt2").string());
  for (const std::string text : {"Hello world, it's 10/10!", " <|endoftext|> déjà vu 映画\n\n  x", ""}) {
    EXPECT_EQ(to_original(from_files, from_files.encode(text)), to_original(original, original.encode(text))) << text;
  }
}

TEST(HuggingFaceExport, ExportThenImportGivesBitIdenticalWeights) {
  const auto tiny = fixtures_dir() / "tiny_bert";
  ULMFIT_REQUIRE_FIXTURE(tiny / "model.safetensors");
  testing::TempDir dir;
  interop::import_hugging_face({tiny.string(), (dir / "a").string(), false});
  EXPECT_EQ(interop::export_hugging_face({(dir / "a").string(), (dir / "hf").string(), false}), 5u + 2u * 16u + 1u);
  // The encoder and the masked-LM bias come back as the checkpoint had them.
  const auto original = io::read_safetensors((tiny / "model.safetensors").string());
  const auto exported = io::read_safetensors((dir / "hf" / "model.safetensors").string());
  std::size_t compared = 0;
  for (const auto& [name, t] : exported) {
    const auto it = original.count(name) ? original.find(name) : original.find("bert." + name);
    ASSERT_NE(it, original.end()) << name;
    EXPECT_TRUE(torch::equal(it->second, t)) << name;
    ++compared;
  }
  EXPECT_EQ(compared, exported.size());
  interop::import_hugging_face({(dir / "hf").string(), (dir / "b").string(), false});
  const auto a = pipeline::RunDir::open((dir / "a").string()), b = pipeline::RunDir::open((dir / "b").string());
  const auto cfg = a.read_config();
  auto ma = nn::make_language_model(cfg.model, 30522), mb = nn::make_language_model(b.read_config().model, 30522);
  a.load_weights(*ma, "model.pt");
  b.load_weights(*mb, "model.pt");
  const auto pb = mb->named_parameters();
  for (const auto& p : ma->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  EXPECT_EQ(util::read_file(dir / "a" / "tokenizer.json"), util::read_file(dir / "b" / "tokenizer.json"));
}

/// Exports an import of `hf_dir`, then has the pinned transformers load it
/// and compare its outputs with `fixture` (tests/conformance/check_export.py).
/// Exports `run`, then has the pinned transformers load it and compare its
/// outputs with `fixture`, and its tokenizer with `original_dir`'s.
void expect_transformers_loads_run_export(const fs::path& run, const fs::path& fixture, const fs::path& original_dir) {
  ULMFIT_REQUIRE_FIXTURE(fixture);
  ULMFIT_REQUIRE_FIXTURE(fixtures_dir() / "python-path");
  std::string python = util::read_file(fixtures_dir() / "python-path");
  python.erase(python.find_last_not_of(" \n") + 1);
  const auto dir = run.parent_path();  // the caller's temporary folder
  interop::export_hugging_face({run.string(), (dir / "hf").string(), false});
  const std::string cmd = python + " " + ULMFIT_SOURCE_DIR + "/tests/conformance/check_export.py " +
                          (dir / "hf").string() + " " + fixture.string() + " " + original_dir.string() + " > " +
                          (dir / "check.txt").string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  const auto report = util::read_file(dir / "check.txt");
  EXPECT_EQ(status, 0) << report;
  EXPECT_THAT(report, ::testing::HasSubstr("tokenizer agrees"));
  std::cout << report.substr(report.rfind("\n", report.size() - 2) + 1);  // its verdict line
}

void expect_transformers_loads_export(const fs::path& hf_dir, const fs::path& fixture) {
  testing::TempDir dir;
  interop::import_hugging_face({hf_dir.string(), (dir / "run").string(), false});
  expect_transformers_loads_run_export(dir / "run", fixture, hf_dir);
}

TEST(HuggingFaceExport, TransformersLoadsTheExportWithTheSameHiddenStates) {
  expect_transformers_loads_export(minilm_dir(), fixtures_dir() / "minilm_hidden.safetensors");
}

TEST(HuggingFaceExport, TransformersLoadsDistilBertAndGpt2ExportsWithTheSameOutputs) {
  expect_transformers_loads_export(fixtures_dir() / "tiny_distilbert", fixtures_dir() / "tiny_distilbert_hidden.safetensors");
  expect_transformers_loads_export(fixtures_dir() / "tiny_gpt2", fixtures_dir() / "tiny_gpt2_logits.safetensors");
}

/// A classifier with model.pooling: hugging_face on an import of `hf_dir`
/// (its head as initialised), exported; transformers' *ForSequenceClassification
/// must give the same class logits on a right-padded batch.
void expect_classifier_head_export(const fs::path& hf_dir) {
  testing::TempDir dir;
  interop::import_hugging_face({hf_dir.string(), (dir / "lm").string(), false});
  const auto lm = pipeline::RunDir::open((dir / "lm").string());
  auto cfg = lm.read_config();
  cfg.model.pooling = "hugging_face";
  const auto tok = text::Tokenizer::load_from_run((dir / "lm").string());
  auto clf = nn::make_classifier(cfg.model, cfg.train, tok.vocab_size(), 2);
  lm.load_encoder_weights(*clf->encoder, "model.pt");
  clf->eval();
  {
    auto run = pipeline::RunDir::create((dir / "clf").string(), false);
    run.write_config(cfg);
    tok.save_into_run(run.path());
    run.save_weights(*clf, "model.pt");
    pipeline::RunMeta meta;
    meta.stage = "finetune";
    meta.task = "classifier";
    meta.backbone = cfg.model.backbone;
    meta.vocab_size = tok.vocab_size();
    meta.labels = {"neg", "pos"};
    run.write_meta(meta);
  }
  // <s> (the model's [CLS] or <|endoftext|>) and the text, padded at the end.
  const std::vector<std::string> texts = {"A wonderful film, I loved it.", "Boring.", "It was fine, not great, not awful at all."};
  std::vector<std::vector<int>> rows;
  for (const auto& t : texts) {
    rows.push_back({text::SpecialIds::kBos});
    for (int id : tok.encode(t)) rows.back().push_back(id);
  }
  const int64_t width = static_cast<int64_t>(std::max_element(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.size() < b.size(); })->size());
  auto tokens = torch::full({3, width}, text::SpecialIds::kPad, torch::kInt64);
  auto original = torch::full({3, width}, cfg.model.backbone == "transformer" ? tok.original_id(text::SpecialIds::kBos)
                                                                              : tok.original_id(text::SpecialIds::kPad), torch::kInt64);
  auto mask = torch::zeros({3, width}, torch::kInt64);
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t i = 0; i < static_cast<int64_t>(rows[static_cast<std::size_t>(r)].size()); ++i) {
      const int id = rows[static_cast<std::size_t>(r)][static_cast<std::size_t>(i)];
      tokens[r][i] = id;
      original[r][i] = tok.original_id(id);
      mask[r][i] = 1;
    }
  }
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = clf->forward(tokens, mask.to(torch::kBool));
  }
  io::write_safetensors((dir / "fixture.safetensors").string(),
                        {{"input_ids", original}, {"attention_mask", mask}, {"class_logits", logits.contiguous()}});
  EXPECT_GT((logits.select(1, 0) - logits.select(1, 1)).abs().max().item<double>(), 0.0);
  expect_transformers_loads_run_export(dir / "clf", dir / "fixture.safetensors", hf_dir);
}

TEST(HuggingFaceExport, ClassifierHeadsExportAsTheirSequenceClassificationModels) {
  ULMFIT_REQUIRE_FIXTURE(fixtures_dir() / "tiny_bert" / "model.safetensors");
  ULMFIT_REQUIRE_FIXTURE(fixtures_dir() / "tiny_distilbert" / "model.safetensors");
  ULMFIT_REQUIRE_FIXTURE(fixtures_dir() / "tiny_gpt2" / "model.safetensors");
  expect_classifier_head_export(fixtures_dir() / "tiny_bert");
  expect_classifier_head_export(fixtures_dir() / "tiny_distilbert");
  expect_classifier_head_export(fixtures_dir() / "tiny_gpt2");
}

TEST(HuggingFaceLayout, FollowsTheModelSectionAndGatesTheHuggingFaceHead) {
  config::Config cfg;
  cfg.model.backbone = "bert";
  cfg.model.norm = "post";
  cfg.model.type_vocab_size = 2;
  EXPECT_EQ(nn::hugging_face_layout(cfg.model), "bert");
  cfg.model.type_vocab_size = 0;
  EXPECT_EQ(nn::hugging_face_layout(cfg.model), "distilbert");
  cfg.model.backbone = "transformer";
  cfg.model.norm = "pre";
  EXPECT_EQ(nn::hugging_face_layout(cfg.model), "gpt2");
  cfg.model.pooling = "hugging_face";
  EXPECT_NO_THROW(nn::check_architecture(cfg, false));
  cfg.model.backbone = "bert";  // the toolkit's own BERT is pre-LN: no Hugging Face layout
  EXPECT_EQ(nn::hugging_face_layout(cfg.model), "");
  try {
    nn::check_architecture(cfg, false);
    ADD_FAILURE() << "hugging_face pooling accepted without a layout";
  } catch (const ConfigError& e) {
    EXPECT_THAT(std::string(e.what()), ::testing::HasSubstr("model.pooling"));
  }
}

TEST(HuggingFaceImport, ConfigOptionsTheToolkitLacksAreRefusedByName) {
  auto refuse = [](const std::string& json, const std::string& needle) {
    try {
      interop::model_config_from_hugging_face(json, "x/config.json");
      ADD_FAILURE() << "accepted: " << json;
    } catch (const CheckpointError& e) {
      EXPECT_THAT(std::string(e.what()), ::testing::AllOf(::testing::HasSubstr("x/config.json"), ::testing::HasSubstr(needle)));
    }
  };
  const std::string base = R"("hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                              "max_position_embeddings": 128, "intermediate_size": 96)";
  refuse("{\"model_type\": \"t5\", " + base + "}", "model_type t5");
  refuse(R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 128,
             "scale_attn_by_inverse_layer_idx": true})", "scale_attn_by_inverse_layer_idx true");
  refuse(R"({"model_type": "distilbert", "dim": 64, "n_layers": 2, "n_heads": 4, "hidden_dim": 96,
             "max_position_embeddings": 128, "activation": "relu"})", "activation relu");
  refuse("{\"model_type\": \"bert\", \"position_embedding_type\": \"relative_key\", " + base + "}",
         "position_embedding_type \"relative_key\"");
  refuse("{\"model_type\": \"bert\", \"hidden_act\": \"relu6\", " + base + "}", "hidden_act relu6");
  refuse("{\"model_type\": \"bert\"}", "hidden_size");
  const auto m = interop::model_config_from_hugging_face("{\"model_type\": \"bert\", " + base + "}", "x/config.json");
  EXPECT_EQ(m.backbone, "bert");
  EXPECT_EQ(m.norm, "post");
  EXPECT_EQ(m.ffn_size, 96);
  EXPECT_EQ(m.type_vocab_size, 2);
}

}  // namespace
}  // namespace ulmfit
