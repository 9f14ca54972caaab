"""fastai's side of bench/fastai_comparison.sh: the ULMFiT recipe as a fastai
user writes it (fastai.text, SentencePiece, AWD_LSTM, fit_one_cycle, gradual
unfreezing), on the files bench/fastai/make_data.py wrote, one thread.

Prints one JSON line: LM training tokens/s (training batches only), the LM's
validation loss summed over every predicted token (so the shell script can
turn it into a perplexity per word), the classifier's test accuracy and how
many test reviews it called each class.
"""
import argparse
import copy
import json
import pathlib
import time

import pandas as pd
import torch
import torch.nn.functional as F
from fastai.text.all import (AWD_LSTM, Callback, ProgressCallback, SentencePieceTokenizer, TextDataLoaders,
                             Recorder, accuracy, awd_lstm_clas_config, awd_lstm_lm_config, defaults, language_model_learner,
                             set_seed, text_classifier_learner)


class TrainTimer(Callback):
    """Seconds and target tokens of training batches, evaluation excluded."""
    order = 100

    def before_fit(self):
        self.seconds, self.tokens = 0.0, 0

    def before_train(self):
        self.start = time.perf_counter()

    def after_batch(self):
        if self.training:
            self.tokens += self.yb[0].numel()

    def after_train(self):
        self.seconds += time.perf_counter() - self.start


class KeepBest(Callback):
    """Keeps the weights of the epoch with the best validation accuracy, over
    every fit call, as ulmfit's monitor does; they are loaded at the end."""
    order = Recorder.order + 1  # after the recorder has this epoch's metrics

    def __init__(self):
        self.best, self.state = -1.0, None

    def after_epoch(self):
        value = dict(zip(self.recorder.metric_names[1:], self.recorder.values[-1]))["accuracy"]
        if value > self.best:
            self.best, self.state = float(value), copy.deepcopy(self.learn.model.state_dict())


def lines(path):
    return [line.rstrip("\n") for line in open(path, encoding="utf-8") if line.strip()]


def quiet_progress():
    """Progress bars off (a log, not a terminal); the recorder still prints each epoch."""
    defaults.callbacks = [cb for cb in defaults.callbacks if cb is not ProgressCallback]


def lm_frame(data):
    """The LM's reviews of make_data.py's folder `data`, training then validation."""
    train, valid = lines(data / "lm_train.txt"), lines(data / "lm_valid.txt")
    return pd.DataFrame({"text": train + valid, "is_valid": [False] * len(train) + [True] * len(valid)})


def lm_learner(dls, **kwargs):
    """The LM of the comparison: AWD-LSTM 128 / 384 / 3, fastai's LM dropouts
    x 0.3, nothing pretrained."""
    config = dict(awd_lstm_lm_config, emb_sz=128, n_hid=384, n_layers=3)
    return language_model_learner(dls, AWD_LSTM, config=config, drop_mult=0.3, pretrained=False, metrics=[], **kwargs)


def valid_nll(learn):
    """The LM's summed cross-entropy and token count over the validation
    stream, state carried across batches as in training."""
    model = learn.model.eval()
    model.reset()
    total, count = 0.0, 0
    with torch.no_grad():
        for xb, yb in learn.dls.valid:
            logits = model(xb)[0]
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), yb.reshape(-1),
                                     reduction="sum").item()
            count += yb.numel()
    return total, count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--lm-only", action="store_true", help="stop after the language model")
    args = ap.parse_args()
    data, work = pathlib.Path(args.data), pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    quiet_progress()
    set_seed(args.seed)

    # The language model: 8k unigram SentencePiece with fastai's default
    # rules, AWD-LSTM 128 / 384 / 3, fastai's dropouts x 0.3, one epoch of
    # one-cycle at 1e-2 (fastai's defaults otherwise: Adam with the text
    # learners' moms 0.8-0.7-0.8 and 0.99, true weight decay 0.01 except on
    # biases, no gradient clipping).
    df = lm_frame(data)
    start = time.perf_counter()
    tok = SentencePieceTokenizer(vocab_sz=8000, model_type="unigram", cache_dir=work / "spm")
    dls_lm = TextDataLoaders.from_df(df, path=work, text_col="text", is_lm=True, valid_col="is_valid",
                                     tok_tfm=tok, bs=32, seq_len=70, n_workers=1)
    tokenize_s = time.perf_counter() - start
    timer = TrainTimer()
    lm = lm_learner(dls_lm, cbs=[timer])
    lm.fit_one_cycle(1, 1e-2)
    lm_nll, lm_tokens = valid_nll(lm)
    # The training loss every step (fastai's smoothed one), beside ulmfit's metrics.jsonl.
    (work / "lm_losses.json").write_text(json.dumps([float(x) for x in lm.recorder.losses]))
    lm.save_encoder("lm_enc")
    lm_result = {"tool": "fastai", "tokenize_s": round(tokenize_s, 1), "lm_train_s": round(timer.seconds, 1),
                 "lm_train_tokens": timer.tokens, "lm_tokens_per_s": round(timer.tokens / timer.seconds, 1),
                 "lm_valid_nll": lm_nll, "lm_valid_tokens": lm_tokens}
    if args.lm_only:
        print(json.dumps(lm_result))
        return

    # The classifier: fastai's gradual-unfreezing recipe (the ULMFiT
    # notebook's), a tenth of the labelled reviews held out to pick the best
    # epoch, BPT3C over windows of 70 up to 1,400 tokens.
    set_seed(args.seed)
    # With oneDNN's LSTM, this torch (2.11) corrupted its heap in fastai's
    # classifier ("corrupted size vs. prev_size", or a tensor of negative size
    # inside _VF.lstm) in three runs of three; the LM above trains with it.
    torch.backends.mkldnn.enabled = False
    df = pd.read_csv(data / "cls_train.tsv", sep="\t", quoting=3, dtype=str, keep_default_na=False)
    df["is_valid"] = False
    df.loc[df.sample(frac=0.1, random_state=args.seed).index, "is_valid"] = True
    tok = SentencePieceTokenizer(sp_model=work / "spm" / "spm.model")
    dls = TextDataLoaders.from_df(df, path=work, text_col="text", label_col="label", valid_col="is_valid",
                                  text_vocab=dls_lm.vocab, tok_tfm=tok, bs=32, seq_len=70, n_workers=1)
    best = KeepBest()
    clas = text_classifier_learner(dls, AWD_LSTM, config=dict(awd_lstm_clas_config, emb_sz=128, n_hid=384,
                                                               n_layers=3),
                                   drop_mult=0.5, pretrained=False, seq_len=70, max_len=1400, metrics=accuracy,
                                   cbs=[best])
    clas.load_encoder("lm_enc")
    start = time.perf_counter()
    moms = (0.8, 0.7, 0.8)
    clas.fit_one_cycle(1, 2e-2, moms=moms)
    clas.freeze_to(-2)
    clas.fit_one_cycle(1, slice(1e-2 / 2.6**4, 1e-2), moms=moms)
    clas.freeze_to(-3)
    clas.fit_one_cycle(1, slice(5e-3 / 2.6**4, 5e-3), moms=moms)
    clas.unfreeze()
    clas.fit_one_cycle(3, slice(1e-3 / 2.6**4, 1e-3), moms=moms)
    finetune_s = time.perf_counter() - start
    clas.remove_cb(best)  # get_preds ends an "epoch" too, without metrics
    clas.model.load_state_dict(best.state)

    test = pd.read_csv(data / "cls_test.tsv", sep="\t", quoting=3, dtype=str, keep_default_na=False)
    preds, _ = clas.get_preds(dl=clas.dls.test_dl(test["text"]))
    vocab = list(clas.dls.vocab[1])
    called = [vocab[i] for i in preds.argmax(1).tolist()]
    print(json.dumps({
        **lm_result, "finetune_s": round(finetune_s, 1),
        "best_valid_accuracy": best.best,
        "test_accuracy": sum(c == t for c, t in zip(called, test["label"])) / len(test),
        "called": {label: called.count(label) for label in vocab},
    }))


if __name__ == "__main__":
    main()
