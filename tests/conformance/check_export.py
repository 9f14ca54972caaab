"""Loads a directory that `ulmfit export` wrote with the pinned transformers
library and compares its last hidden states on a fixture batch (from
make_fixtures.py) with the fixture's, and its tokenizer with the original's.
Prints the largest absolute difference at real positions; exits 1 when it is
1e-4 or more, or the tokenizers disagree.

    python check_export.py EXPORTED_DIR FIXTURE.safetensors ORIGINAL_DIR
"""
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertModel


def main():
    exported, fixture, original = sys.argv[1], sys.argv[2], sys.argv[3]
    f = load_file(fixture)
    model = BertModel.from_pretrained(exported, attn_implementation="eager").eval()
    with torch.no_grad():
        hidden = model(input_ids=f["input_ids"], attention_mask=f["attention_mask"]).last_hidden_state
    mask = f["attention_mask"].bool()
    diff = (hidden - f["last_hidden_state"]).abs().amax(-1)[mask].max().item()
    texts = ["An exported tokenizer: Café, 10/10!", "[CLS] déjà vu [SEP] 映画", ""]
    ours, theirs = AutoTokenizer.from_pretrained(exported), AutoTokenizer.from_pretrained(original)
    same = all(ours(t)["input_ids"] == theirs(t)["input_ids"] for t in texts)
    print(f"max abs difference {diff:.3g}; tokenizer {'agrees' if same else 'DIFFERS'}")
    sys.exit(0 if diff < 1e-4 and same else 1)


if __name__ == "__main__":
    main()
