"""Loads a directory that `ulmfit export` wrote with the pinned transformers
library and compares its outputs on a fixture batch (from make_fixtures.py)
with the fixture's: the last hidden states (AutoModel), the language model's
logits (AutoModelForCausalLM) when the fixture holds `logits`, or a
classifier's (AutoModelForSequenceClassification) when it holds
`class_logits` (computed by the C++ test); and its
tokenizer with the original's. Prints the largest absolute difference at real
positions; exits 1 when it is 1e-4 or more, or the tokenizers disagree.

    python check_export.py EXPORTED_DIR FIXTURE.safetensors ORIGINAL_DIR
"""
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer


def main():
    exported, fixture, original = sys.argv[1], sys.argv[2], sys.argv[3]
    f = load_file(fixture)
    kind = "class_logits" if "class_logits" in f else "logits" if "logits" in f else "last_hidden_state"
    loader = {"class_logits": AutoModelForSequenceClassification, "logits": AutoModelForCausalLM,
              "last_hidden_state": AutoModel}[kind]
    model = loader.from_pretrained(exported, attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(input_ids=f["input_ids"], attention_mask=f["attention_mask"])
    if kind == "class_logits":  # one row of class logits a document
        diff = (out.logits - f["class_logits"]).abs().max().item()
    else:
        got = out.logits if kind == "logits" else out.last_hidden_state
        mask = f["attention_mask"].bool()
        diff = (got - f[kind]).abs().amax(-1)[mask].max().item()
    texts = ["An exported tokenizer: Café, 10/10!", "[CLS] déjà vu [SEP] 映画", " two  spaces\n", ""]
    ours, theirs = AutoTokenizer.from_pretrained(exported), AutoTokenizer.from_pretrained(original)
    same = all(ours(t)["input_ids"] == theirs(t)["input_ids"] for t in texts)
    print(f"{type(model).__name__}: max abs difference {diff:.3g}; tokenizer {'agrees' if same else 'DIFFERS'}")
    sys.exit(0 if diff < 1e-4 and same else 1)


if __name__ == "__main__":
    main()
