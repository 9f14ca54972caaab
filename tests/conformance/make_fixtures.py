"""Writes the conformance fixtures that the C++ tests compare against, using
the pinned `tokenizers` and `transformers` packages (requirements.txt).

    python make_fixtures.py --model DIR --imdb DIR --out DIR

Outputs (in --out):
  minilm_test_ids.tsv        every IMDB test review: relative path, then the
                             MiniLM tokenizer's ids (no special tokens)
  minilm_edge_case_ids.json  the same for edge_cases.json
  minilm_hidden.safetensors  100 test reviews of different lengths, padded in
                             one batch: input_ids, attention_mask and the
                             transformers BertModel's last_hidden_state (fp32)
  tiny_bert/                 a randomly initialised BertForMaskedLM saved with
                             save_pretrained (MiniLM's tokenizer), with
                             tiny_bert_hidden.safetensors: its encoder's
                             last_hidden_state for the same kind of batch
  tiny_distilbert/           the same for a DistilBertForMaskedLM
                             (tiny_distilbert_hidden.safetensors)
  bpe/tokenizer.json         a byte-level BPE tokenizer (GPT-2's kind) that
                             the tokenizers library trains on 2,000 IMDB
                             training reviews, with bpe_test_ids.tsv and
                             bpe_edge_case_ids.json as for MiniLM's
  tiny_gpt2/                 a randomly initialised GPT2LMHeadModel with that
                             tokenizer, and tiny_gpt2_logits.safetensors: its
                             logits on 12 right-padded test reviews
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (BertConfig, BertForMaskedLM, BertModel, DistilBertConfig, DistilBertForMaskedLM,
                          GPT2Config, GPT2LMHeadModel)


def read_reviews(imdb, split="test"):
    paths = []
    for label in ("neg", "pos"):
        folder = os.path.join(imdb, split, label)
        paths += [os.path.join(split, label, f) for f in sorted(os.listdir(folder)) if f.endswith(".txt")]
    texts = []
    for p in paths:
        with open(os.path.join(imdb, p), encoding="utf-8") as f:
            texts.append(f.read())
    return paths, texts


def padded_batch(tokenizer, texts, max_len):
    rows = []
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids[: max_len - 2]
        rows.append([tokenizer.token_to_id("[CLS]")] + ids + [tokenizer.token_to_id("[SEP]")])
    return pad_right(rows)


def pad_right(rows):
    """Rows of ids -> input_ids and attention_mask, padded at the end with 0."""
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def write_ids(tok, paths, texts, cases, out, prefix):
    encodings = tok.encode_batch(texts, add_special_tokens=False)
    with open(os.path.join(out, prefix + "test_ids.tsv"), "w", encoding="utf-8") as f:
        for p, e in zip(paths, encodings):
            f.write(p + "\t" + " ".join(map(str, e.ids)) + "\n")
    rows = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in cases]
    with open(os.path.join(out, prefix + "edge_case_ids.json"), "w", encoding="utf-8") as f:
        json.dump(rows, f, ensure_ascii=False)


def train_byte_level_bpe(texts):
    """GPT-2's kind of tokenizer: byte-level pre-tokenisation, BPE merges,
    <|endoftext|> as its one special token."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer)
    return bpe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--imdb", required=True, help="the aclImdb folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--edge-cases", default=os.path.join(os.path.dirname(__file__), "edge_cases.json"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()

    paths, texts = read_reviews(args.imdb)
    with open(args.edge_cases, encoding="utf-8") as f:
        cases = json.load(f)
    write_ids(tok, paths, texts, cases, args.out, "minilm_")

    # 100 reviews spread over the length range: every 250th test review.
    sample = texts[::250][:100]
    ids, mask = padded_batch(tok, sample, 512)
    model = BertModel.from_pretrained(args.model, attn_implementation="eager").eval()
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    save_file({"input_ids": ids, "attention_mask": mask, "last_hidden_state": hidden.contiguous()},
              os.path.join(args.out, "minilm_hidden.safetensors"))

    # A small random BERT with a masked-LM head, to check the "bert." prefix,
    # the head's bias and a second shape.
    tiny_dir = os.path.join(args.out, "tiny_bert")
    cfg = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=96, max_position_embeddings=128, layer_norm_eps=1e-12)
    tiny = BertForMaskedLM(cfg).eval()
    with torch.no_grad():  # a non-zero head bias, so the test sees it carried over
        tiny.cls.predictions.bias.normal_(0, 0.5)
    tiny.save_pretrained(tiny_dir)
    shutil.copy(os.path.join(args.model, "tokenizer.json"), tiny_dir)
    ids, mask = padded_batch(tok, texts[::1250][:20], 128)
    with torch.no_grad():
        hidden = tiny.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    save_file({"input_ids": ids, "attention_mask": mask, "last_hidden_state": hidden.contiguous(),
               "decoder_bias": tiny.cls.predictions.bias.detach().clone()},
              os.path.join(args.out, "tiny_bert_hidden.safetensors"))

    # The same for DistilBERT: other names, no token types, its own head.
    distil_dir = os.path.join(args.out, "tiny_distilbert")
    cfg = DistilBertConfig(vocab_size=tok.get_vocab_size(), dim=64, n_layers=2, n_heads=4, hidden_dim=96,
                           max_position_embeddings=128)
    distil = DistilBertForMaskedLM(cfg).eval()
    with torch.no_grad():
        distil.vocab_projector.bias.normal_(0, 0.5)
    distil.save_pretrained(distil_dir)
    shutil.copy(os.path.join(args.model, "tokenizer.json"), distil_dir)
    with torch.no_grad():
        hidden = distil.distilbert(input_ids=ids, attention_mask=mask).last_hidden_state
    save_file({"input_ids": ids, "attention_mask": mask, "last_hidden_state": hidden.contiguous(),
               "decoder_bias": distil.vocab_projector.bias.detach().clone()},
              os.path.join(args.out, "tiny_distilbert_hidden.safetensors"))

    # A byte-level BPE tokenizer trained here, its ids on every test review,
    # and a small random GPT-2 on it.
    bpe_dir = os.path.join(args.out, "bpe")
    os.makedirs(bpe_dir, exist_ok=True)
    _, train_texts = read_reviews(args.imdb, "train")
    bpe = train_byte_level_bpe(train_texts[::12][:2000])
    bpe.save(os.path.join(bpe_dir, "tokenizer.json"))
    write_ids(bpe, paths, texts, cases, args.out, "bpe_")

    eot = bpe.token_to_id("<|endoftext|>")
    gpt_dir = os.path.join(args.out, "tiny_gpt2")
    cfg = GPT2Config(vocab_size=bpe.get_vocab_size(), n_embd=64, n_layer=2, n_head=4, n_positions=128,
                     bos_token_id=eot, eos_token_id=eot)
    gpt = GPT2LMHeadModel(cfg).eval()
    gpt.save_pretrained(gpt_dir)
    shutil.copy(os.path.join(bpe_dir, "tokenizer.json"), gpt_dir)
    ids, mask = pad_right([[eot] + bpe.encode(t, add_special_tokens=False).ids[:100] for t in texts[::2000][:12]])
    with torch.no_grad():
        logits = GPT2LMHeadModel.from_pretrained(gpt_dir, attn_implementation="eager").eval()(
            input_ids=ids, attention_mask=mask).logits
    save_file({"input_ids": ids, "attention_mask": mask, "logits": logits.contiguous()},
              os.path.join(args.out, "tiny_gpt2_logits.safetensors"))


if __name__ == "__main__":
    main()
