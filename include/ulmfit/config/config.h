#pragma once
/// Typed configuration. Every default is written once, here, with a comment;
/// the YAML loader, `--dump-config` and `--help` all walk these structs through
/// their `visit` functions, so a key exists in one place only.
///
///   Config cfg = load_config("configs/quickstart-pretrain.yaml", {"train.epochs=2"});
///   int bptt = cfg.train.bptt;
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ulmfit/config/checks.h"

namespace ulmfit::config {

struct TokenizerConfig {
  std::string path;                     // a trained SentencePiece model to use; empty = train one
  int vocab_size = 16000;               // pieces, including pad/unk/bos/eos/mask
  std::string model_type = "unigram";   // unigram | bpe (SentencePiece) | word (lower-cased words)
  int min_count = 1;                    // word: rarer words become unknown
  bool markers = false;                 // SentencePiece: fastai-style case and repetition markers
  double character_coverage = 0.9999;   // share of characters the vocabulary must cover
  std::int64_t input_sentence_size = 1000000;  // documents sampled for training; 0 = all
  int max_sentence_length = 16384;      // bytes; longer training documents are split

  template <class V>
  void visit(V& v) {
    v.path("path", path, "trained SentencePiece model to use instead of training one");
    v.value("vocab_size", vocab_size, "pieces, including pad/unk/bos/eos/mask", at_least(16));
    v.value("model_type", model_type,
            "unigram | bpe (SentencePiece pieces) | word (lower-cased words and punctuation, "
            "saved as a BERT tokenizer.json)",
            one_of({"unigram", "bpe", "word"}));
    v.value("min_count", min_count, "word: words seen fewer times become unknown", at_least(1));
    v.value("markers", markers,
            "SentencePiece: lower-case with xxmaj / xxup markers and count repeats with xxrep / xxwrep (fastai's "
            "rules, undone when decoding)");
    v.value("character_coverage", character_coverage, "share of characters covered",
            in_range(0.5, 1.0));
    v.value("input_sentence_size", input_sentence_size,
            "documents sampled to train the tokenizer; 0 = all", at_least<std::int64_t>(0));
    v.value("max_sentence_length", max_sentence_length,
            "bytes; longer training documents are split", at_least(256));
  }
};

/// One corpus: where it is and how to read it.
struct DataSource {
  std::vector<std::string> path;        // files or folders; empty = not given
  std::string format = "text";          // text | wikitext | folder | tsv | csv | jsonl
  std::string text_column = "text";     // tsv / csv
  std::string label_column = "label";   // tsv / csv; empty = unlabelled
  std::string quoting = "auto";         // tsv / csv: auto | none | rfc4180
  std::string text_field = "text";      // jsonl
  std::string label_field = "label";    // jsonl; empty = unlabelled
  std::vector<std::string> folders;     // folder: sub-folders to read; empty = all
  std::vector<std::string> unlabelled = {"unsup"};  // folder: sub-folders without a label
  std::vector<std::string> labels;      // the label set, in class-index order; empty = found
  std::int64_t limit = 0;               // keep a random subset of this many documents; 0 = all
  bool balanced = false;                // with limit: the same number of documents of each label
  std::string on_error = "fail";        // fail | skip: what a malformed row does
  bool clean_html = true;               // turn <br /> into spaces

  bool given() const { return !path.empty(); }

  template <class V>
  void visit(V& v) {
    v.path("path", path, "file(s) or folder(s) to read");
    v.value("format", format, "text | wikitext | folder | tsv | csv | jsonl",
            one_of({"text", "wikitext", "folder", "tsv", "csv", "jsonl"}));
    v.value("text_column", text_column, "tsv/csv column holding the text");
    v.value("label_column", label_column, "tsv/csv column holding the label; empty = none");
    v.value("quoting", quoting,
            "tsv/csv: auto (tsv none, csv rfc4180) | none (a quote is text; no field holds a tab or newline) | "
            "rfc4180 (\"quoted\" fields may hold delimiters, newlines and doubled quotes)",
            one_of({"auto", "none", "rfc4180"}));
    v.value("text_field", text_field, "jsonl field holding the text");
    v.value("label_field", label_field, "jsonl field holding the label; empty = none");
    v.value("folders", folders, "folder format: sub-folders to read; empty = all");
    v.value("unlabelled", unlabelled, "folder format: sub-folders whose documents have no label");
    v.value("labels", labels, "label names in class-index order; empty = sorted names found");
    v.value("limit", limit, "keep a random subset of this many documents; 0 = all",
            at_least<std::int64_t>(0));
    v.value("balanced", balanced, "with limit: limit / labels documents of each label (the rest of the division dropped)");
    v.value("on_error", on_error, "fail | skip: what a malformed row or document does",
            one_of({"fail", "skip"}));
    v.value("clean_html", clean_html, "replace HTML line breaks (<br />) with spaces");
  }
};

struct DataConfig {
  DataSource train;
  DataSource valid;
  DataSource test;
  double valid_split = 0;  // without data.valid: share of train held out to validate
  std::string cache_dir;  // token-id cache; empty = $ULMFIT_CACHE or ~/.cache/ulmfit

  template <class V>
  void visit(V& v) {
    v.section("train", train);
    v.section("valid", valid);
    v.section("test", test);
    v.value("valid_split", valid_split,
            "without data.valid: share of the training documents held out to validate",
            in_range(0.0, 0.5));
    v.path("cache_dir", cache_dir, "token cache folder; empty = $ULMFIT_CACHE or ~/.cache/ulmfit");
  }
};

struct DropoutConfig {
  double embed = 0.02;   // whole embedding rows
  double input = 0.25;   // embedded input, one mask per sequence
  double weight = 0.2;   // DropConnect on LSTM hidden-to-hidden weights
  double hidden = 0.15;  // between LSTM layers
  double output = 0.1;   // last LSTM output
  double attention = 0.1;  // transformer / bert: attention probabilities
  double mult = 1.0;     // scales all six

  template <class V>
  void visit(V& v) {
    v.value("embed", embed, "whole embedding rows", probability_below_one());
    v.value("input", input, "embedded input (awd_lstm / qrnn: one mask per sequence)", probability_below_one());
    v.value("weight", weight, "awd_lstm: DropConnect on hidden-to-hidden weights; qrnn: on the gate weights", probability_below_one());
    v.value("hidden", hidden, "between LSTM layers; transformer / bert: on each residual branch",
            probability_below_one());
    v.value("output", output, "the encoder's output, before the LM decoder or classifier head",
            probability_below_one());
    v.value("attention", attention, "transformer / bert: attention probabilities", probability_below_one());
    v.value("mult", mult, "scales all six dropouts", in_range(0.0, 2.0));
  }
};

struct ModelConfig {
  std::string backbone = "awd_lstm";  // awd_lstm | qrnn | transformer | bert | ngrams
  int emb_size = 400;
  int hidden_size = 1152;
  int layers = 3;
  int heads = 4;         // transformer / bert
  int max_len = 512;     // transformer / bert: learned positions
  int ffn_size = 0;      // transformer / bert: feed-forward width; 0 = 4 x emb_size
  std::string norm = "pre";           // transformer / bert: pre | post (Hugging Face BERT) LayerNorm
  std::string activation = "gelu";    // transformer / bert: gelu (erf) | gelu_tanh (GPT-2)
  double norm_eps = 1e-5;             // transformer / bert: LayerNorm epsilon
  int type_vocab_size = 0;            // transformer / bert: token-type embeddings (BERT: 2); 0 = none
  bool output_bias = true;            // the LM decoder's bias (GPT-2's tied head has none)
  std::string pooling = "auto";       // classifier head: auto | concat | first_mean | hugging_face
  bool head_batch_norm = true;        // concat / first_mean heads: BatchNorm before each linear layer
  int ngram_order = 2;                // ngrams: longest n-gram
  std::int64_t ngram_buckets = 1 << 20;  // ngrams: hashed rows for n-grams of 2+ tokens
  std::string ngram_weighting = "tfidf";  // ngrams: tfidf | mean (fastText)
  DropoutConfig dropout;

  template <class V>
  void visit(V& v) {
    v.value("backbone", backbone,
            "awd_lstm | qrnn (MultiFiT's quasi-recurrent layers) | transformer | bert | ngrams (the fastText-style baseline: classifiers only)",
            one_of({"awd_lstm", "qrnn", "transformer", "bert", "ngrams"}));
    v.value("emb_size", emb_size, "embedding width (transformer / bert: the model width)", at_least(1));
    v.value("hidden_size", hidden_size,
            "awd_lstm / qrnn: hidden width (the last layer uses emb_size); transformers use 4 x emb_size",
            at_least(1));
    v.value("layers", layers, "stacked layers (LSTMs or Transformer blocks)", at_least(1));
    v.value("heads", heads, "transformer / bert: attention heads; emb_size must be a multiple", at_least(1));
    v.value("max_len", max_len, "transformer / bert: the longest sequence read at once (learned positions)",
            at_least(1));
    v.value("ffn_size", ffn_size, "transformer / bert: feed-forward width; 0 = 4 x emb_size", at_least(0));
    v.value("norm", norm, "transformer / bert: LayerNorm placement, pre (GPT-2) | post (Hugging Face BERT)",
            one_of({"pre", "post"}));
    v.value("activation", activation, "transformer / bert: gelu (erf) | gelu_tanh (GPT-2's approximation)",
            one_of({"gelu", "gelu_tanh"}));
    v.value("norm_eps", norm_eps, "transformer / bert: LayerNorm epsilon", positive());
    v.value("type_vocab_size", type_vocab_size, "transformer / bert: token-type embeddings (BERT: 2); 0 = none",
            at_least(0));
    v.value("output_bias", output_bias, "language model: a trained bias on the tied decoder (false: none, as GPT-2)");
    v.value("pooling", pooling,
            "classifier head: auto (concat for awd_lstm / qrnn / transformer, first_mean for bert) | concat ([last, max, "
            "mean], BatchNorm-ReLU head) | first_mean ([first, mean]) | hugging_face (an imported model's "
            "*ForSequenceClassification head, which export writes)",
            one_of({"auto", "concat", "first_mean", "hugging_face"}));
    v.value("head_batch_norm", head_batch_norm,
            "concat / first_mean classifier heads: BatchNorm before each linear layer (fastai's head)");
    v.value("ngram_order", ngram_order, "ngrams: longest n-gram of tokens (1 = tokens alone)", in_range(1, 5));
    v.value("ngram_buckets", ngram_buckets, "ngrams: hashed embedding rows shared by n-grams of 2+ tokens",
            at_least<std::int64_t>(1));
    v.value("ngram_weighting", ngram_weighting,
            "ngrams: tfidf (each n-gram weighted by its inverse document frequency in the training documents, "
            "the document's vector L2-normalised) | mean (fastText: the plain mean)",
            one_of({"tfidf", "mean"}));
    v.section("dropout", dropout);
  }
};

struct OptimizerConfig {
  std::string name = "adamw";              // adam | adamw
  std::vector<double> betas = {0.9, 0.99};
  double weight_decay = 0.01;
  bool decay_biases_and_norms = true;  // false: fastai's and transformers' rule, decay on matrices only
  double eps = 1e-5;

  template <class V>
  void visit(V& v) {
    v.value("name", name, "adam | adamw (decoupled weight decay)", one_of({"adam", "adamw"}));
    v.value("betas", betas, "Adam's beta1, beta2", Check<std::vector<double>>(check_betas));
    v.value("weight_decay", weight_decay, "weight decay", at_least(0.0));
    v.value("decay_biases_and_norms", decay_biases_and_norms,
            "weight decay on one-dimensional parameters too (biases, norm scales); false leaves them undecayed, "
            "as fastai (wd_bn_bias=False) and the transformers Trainer do");
    v.value("eps", eps, "Adam's epsilon", positive());
  }

  static std::string check_betas(const std::vector<double>& b) {
    if (b.size() != 2) return "must be a list of two numbers";
    for (double x : b) {
      if (!(x >= 0 && x < 1)) return "each beta must be in [0, 1)";
    }
    return {};
  }
};

struct ScheduleConfig {
  std::string name = "one_cycle";  // one_cycle | stlr | constant | cosine
  double pct_start = 0.25;         // one_cycle: share of steps warming up
  double cut_frac = 0.1;           // stlr: share of steps increasing
  double ratio = 32;               // stlr: lr_max / lr_min
  std::int64_t warmup_steps = 0;   // constant / cosine: linear warm-up steps

  template <class V>
  void visit(V& v) {
    v.value("name", name, "one_cycle | stlr | constant | cosine",
            one_of({"one_cycle", "stlr", "constant", "cosine"}));
    v.value("pct_start", pct_start, "one_cycle: share of steps warming up", in_range(0.0, 1.0));
    v.value("cut_frac", cut_frac, "stlr: share of steps increasing", in_range(0.001, 0.999));
    v.value("ratio", ratio, "stlr: lr_max / lr_min", at_least(1.0));
    v.value("warmup_steps", warmup_steps, "constant/cosine: linear warm-up steps",
            at_least<std::int64_t>(0));
  }
};

struct TrainConfig {
  int epochs = 10;
  int batch_size = 64;
  int bptt = 72;
  bool variable_bptt = true;     // AWD-LSTM's random window length
  double lr = 3e-3;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  double discriminative_factor = 2.6;
  std::string unfreeze = "none";  // none | gradual
  double clip_grad = 0.1;         // 0 = no clipping
  double ar = 2.0;
  double tar = 1.0;
  int max_len = 1440;             // BPT3C: tokens whose outputs the classifier keeps
  std::string long_documents = "truncate";  // transformer / bert classifier: truncate | chunk
  int length_sort_window = 50;    // classifier: training batches sorted by length within this many
  int batch_norm_refresh = 0;     // classifier: training batches that recompute the head's BatchNorm statistics
  double mask_prob = 0.15;        // bert: share of positions the masked LM predicts
  std::vector<int> freeze_to;     // per epoch: top layer groups that train (0 = all)
  std::vector<double> stage_lrs;  // peak LR per unfreezing stage; empty = lr
  int patience = 0;               // early stopping; 0 = off
  std::string monitor;            // metric picking the best weights; empty = task default
  std::string keep = "best";      // weights the run keeps: the best monitored evaluation's, or the last one's
  int eval_every = 0;             // steps between evaluations within an epoch; 0 = epoch ends only
  int log_every = 0;              // steps between metrics lines; 0 = about 20 per epoch
  int checkpoint_every = 0;       // steps between resumable checkpoints; 0 = epoch ends only
  std::string on_nonfinite = "stop";  // stop | skip: what a NaN / infinite loss or gradient does
  double spike_rollback = 0;      // nats over the running mean that make a loss spike; 0 = off
  double spike_lr_backoff = 0.5;  // the stage's LR is multiplied by this at each rollback after its first

  template <class V>
  void visit(V& v) {
    v.value("epochs", epochs, "passes over the training data", at_least(1));
    v.value("batch_size", batch_size, "sequences per step", at_least(1));
    v.value("bptt", bptt, "tokens per window", at_least(1));
    v.value("variable_bptt", variable_bptt, "awd_lstm / qrnn: AWD-LSTM's randomised window length");
    v.value("lr", lr, "peak learning rate of the top layer group", positive());
    v.section("optimizer", optimizer);
    v.section("schedule", schedule);
    v.value("discriminative_factor", discriminative_factor,
            "each lower layer group's LR is divided by this", at_least(1.0));
    v.value("unfreeze", unfreeze, "none | gradual", one_of({"none", "gradual"}));
    v.value("clip_grad", clip_grad, "gradient norm clip; 0 = none", at_least(0.0));
    v.value("ar", ar, "awd_lstm / qrnn: activation regularisation alpha", at_least(0.0));
    v.value("tar", tar, "awd_lstm / qrnn: temporal activation regularisation beta", at_least(0.0));
    v.value("max_len", max_len,
            "classifier: awd_lstm keeps the outputs of the last this many tokens (BPT3C); transformer / bert "
            "read the first this many with long_documents: chunk",
            at_least(1));
    v.value("long_documents", long_documents,
            "transformer / bert classifier: truncate (first model.max_len tokens) | chunk (first max_len "
            "tokens in model.max_len chunks, pooled together)",
            one_of({"truncate", "chunk"}));
    v.value("length_sort_window", length_sort_window,
            "classifier: training documents are sorted by length within windows of this many batches "
            "(less padding, as fastai's SortishSampler); 1 = batches of random lengths",
            at_least(1));
    v.value("batch_norm_refresh", batch_norm_refresh,
            "classifier: before each evaluation, the head's BatchNorm statistics are recomputed from the "
            "current weights over the last this many training batches; 0 = the running averages of training",
            at_least(0));
    v.value("mask_prob", mask_prob, "bert: share of positions the masked-LM objective predicts",
            in_range(0.01, 0.99));
    v.value("freeze_to", freeze_to,
            "per epoch, how many top layer groups train (0 = all); overrides unfreeze");
    v.value("stage_lrs", stage_lrs, "peak LR of each unfreezing stage; empty = lr for all");
    v.value("patience", patience,
            "stop after this many evaluations without improvement (epochs, unless eval_every); 0 = never",
            at_least(0));
    v.value("eval_every", eval_every,
            "also evaluate (and keep weights as train.keep says) every this many steps; 0 = at epoch ends only",
            at_least(0));
    v.value("monitor", monitor,
            "metric that picks the best weights and drives patience; empty = valid_loss (LM) or "
            "accuracy (classifier)",
            one_of({"", "valid_loss", "perplexity", "accuracy", "macro_f1", "train_loss"}));
    v.value("keep", keep,
            "the weights a run keeps: best = those of the evaluation with the best monitored metric; last = "
            "those of the last evaluation, as fastai's fit_one_cycle and the Trainer of transformers keep by "
            "default (monitor and patience still decide when to stop)",
            one_of({"best", "last"}));
    v.value("log_every", log_every, "steps between metrics.jsonl lines; 0 = about 20 per epoch",
            at_least(0));
    v.value("checkpoint_every", checkpoint_every,
            "steps between resumable checkpoints (state/checkpoint.pt); 0 = at epoch ends only",
            at_least(0));
    v.value("on_nonfinite", on_nonfinite,
            "a NaN or infinite loss or gradient: stop the run, or skip the batch (counted in the log)",
            one_of({"stop", "skip"}));
    v.value("spike_rollback", spike_rollback,
            "a batch loss this many nats above the running mean is a spike: go back to the weights and "
            "optimizer state of 25-50 steps earlier and go on with the next batches (from a stage's second "
            "rollback on, at spike_lr_backoff x its LR); 0 = off",
            at_least(0.0));
    v.value("spike_lr_backoff", spike_lr_backoff,
            "with spike_rollback: the LR factor each rollback after a stage's first applies", in_range(0.01, 1.0));
  }
};

struct Config {
  std::int64_t seed = 42;
  std::string device = "auto";     // auto | cpu | cuda | cuda:N
  std::string precision = "auto";  // auto | fp32 | bf16 | fp16
  int threads = 0;                 // 0 = every core not busy with other work
  TokenizerConfig tokenizer;
  DataConfig data;
  ModelConfig model;
  TrainConfig train;

  /// Where each key that a file or override set came from ("file:line:col"
  /// or "--set"); filled by the loader, for error messages.
  std::map<std::string, std::string> locations;

  /// "file:line:col: key" when the key was read from a file, else "key".
  std::string where(const std::string& key) const;

  template <class V>
  void visit(V& v) {
    v.value("seed", seed, "seed of every random number in a run", at_least<std::int64_t>(0));
    v.value("device", device, "auto | cpu | cuda | cuda:N", Check<std::string>(check_device));
    v.value("precision", precision, "auto | fp32 | bf16 | fp16 (CUDA only)",
            one_of({"auto", "fp32", "bf16", "fp16"}));
    v.value("threads", threads, "CPU threads; 0 = every core that other processes are not using (measured at start-up)", at_least(0));
    v.section("tokenizer", tokenizer);
    v.section("data", data);
    v.section("model", model);
    v.section("train", train);
  }

  static std::string check_device(const std::string& d);
};

}  // namespace ulmfit::config
