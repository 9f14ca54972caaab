"""Writes the conformance fixtures that the C++ tests compare against, using
the pinned `tokenizers` and `transformers` packages (requirements.txt).

    python make_fixtures.py --model DIR --imdb DIR --out DIR

Outputs (in --out):
  imdb_test_ids.tsv          every IMDB test review: relative path, then the
                             MiniLM tokenizer's ids (no special tokens)
  edge_case_ids.json         the same for edge_cases.json
  minilm_hidden.safetensors  100 test reviews of different lengths, padded in
                             one batch: input_ids, attention_mask and the
                             transformers BertModel's last_hidden_state (fp32)
  tiny_bert/                 a randomly initialised BertForMaskedLM saved with
                             save_pretrained (MiniLM's tokenizer), with
                             tiny_bert_hidden.safetensors: its encoder's
                             last_hidden_state for the same kind of batch
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import BertConfig, BertForMaskedLM, BertModel


def read_reviews(imdb):
    paths = []
    for label in ("neg", "pos"):
        folder = os.path.join(imdb, "test", label)
        paths += [os.path.join("test", label, f) for f in sorted(os.listdir(folder)) if f.endswith(".txt")]
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
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


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
    encodings = tok.encode_batch(texts, add_special_tokens=False)
    with open(os.path.join(args.out, "imdb_test_ids.tsv"), "w", encoding="utf-8") as f:
        for p, e in zip(paths, encodings):
            f.write(p + "\t" + " ".join(map(str, e.ids)) + "\n")

    with open(args.edge_cases, encoding="utf-8") as f:
        cases = json.load(f)
    out = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in cases]
    with open(os.path.join(args.out, "edge_case_ids.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)

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


if __name__ == "__main__":
    main()
