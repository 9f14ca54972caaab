"""The data files that bench/fastai_comparison.sh gives both ulmfit and fastai.

Both tools read the same files, so neither reads a review the other does not:
  lm_train.txt   unlabelled IMDB reviews (train/unsup), one per line
  lm_valid.txt   other unlabelled reviews, the LM's validation text
  cls_train.tsv  labelled training reviews, balanced (label <tab> text)
  cls_test.tsv   labelled test reviews, balanced
  words.json     whitespace-separated words of lm_valid.txt, which turns each
                 tool's total loss into a perplexity per word (the tools'
                 tokenizers differ, so per token would not compare)
HTML line breaks become spaces and tabs/newlines become spaces, so a line is a
review and both tools see the same characters. The draws are seeded.
"""
import argparse
import json
import pathlib
import random
import re


def read_reviews(folder):
    # Sorted so that the seeded draw does not depend on the file system's order.
    return [p.read_text(encoding="utf-8") for p in sorted(pathlib.Path(folder).glob("*.txt"))]


def clean(text):
    text = re.sub(r"<br\s*/?>", " ", text)
    return re.sub(r"[\t\r\n]+", " ", text).strip()


def balanced(root, per_class, rng):
    rows = []
    for label in ("neg", "pos"):
        reviews = read_reviews(root / label)
        rows += [(label, clean(t)) for t in rng.sample(reviews, per_class)]
    rng.shuffle(rows)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--imdb", required=True, help="the aclImdb folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lm-train", type=int, default=5000)
    ap.add_argument("--lm-valid", type=int, default=500)
    ap.add_argument("--labels", type=int, default=1000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    imdb, out = pathlib.Path(args.imdb), pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)

    unsup = [clean(t) for t in rng.sample(read_reviews(imdb / "train" / "unsup"), args.lm_train + args.lm_valid)]
    (out / "lm_train.txt").write_text("\n".join(unsup[: args.lm_train]) + "\n", encoding="utf-8")
    valid = unsup[args.lm_train:]
    (out / "lm_valid.txt").write_text("\n".join(valid) + "\n", encoding="utf-8")
    (out / "words.json").write_text(json.dumps({"lm_valid_words": sum(len(t.split()) for t in valid)}))

    for name, split, n in (("cls_train.tsv", "train", args.labels), ("cls_test.tsv", "test", args.test)):
        rows = balanced(imdb / split, n // 2, rng)
        (out / name).write_text("label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in rows),
                                encoding="utf-8")


if __name__ == "__main__":
    main()
