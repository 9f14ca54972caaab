"""The transformers side of bench/compare_hf.sh, and its data and scoring.

    compare_hf.py split --imdb DIR --out DIR [--train 1000 --test 2000 --seed 42]
        train.jsonl / test.jsonl: balanced random draws ({"text", "label"}),
        the same files for both sides
    compare_hf.py finetune --model DIR --data DIR --max-len 256 --epochs 3 ...
        fine-tunes AutoModelForSequenceClassification the way the transformers
        documentation shows in plain PyTorch (AdamW, linear warm-up and decay,
        dynamic padding, shuffled batches), scores test.jsonl, then times an
        inference loop over it; prints one JSON line
    compare_hf.py score --data DIR --predictions FILE
        accuracy of `ulmfit predict` output against test.jsonl; one JSON line
"""
import argparse
import json
import os
import random
import time


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def split(args):
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    for part, n in (("train", args.train), ("test", args.test)):
        rows = []
        for label in ("neg", "pos"):
            folder = os.path.join(args.imdb, part, label)
            names = sorted(f for f in os.listdir(folder) if f.endswith(".txt"))
            for name in rng.sample(names, n // 2):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    rows.append({"text": f.read(), "label": label})
        rng.shuffle(rows)
        with open(os.path.join(args.out, part + ".jsonl"), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")


def finetune(args):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    labels = ["neg", "pos"]
    train, test = read_jsonl(os.path.join(args.data, "train.jsonl")), read_jsonl(os.path.join(args.data, "test.jsonl"))
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32

    def encode(rows):
        return tok([r["text"] for r in rows], truncation=True, max_length=args.max_len, padding=True,
                   return_tensors="pt")

    start = time.perf_counter()
    steps_per_epoch = (len(train) + args.batch_size - 1) // args.batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps_per_epoch * args.epochs),
                                               steps_per_epoch * args.epochs)
    rng = random.Random(args.seed)
    model.train()
    for epoch in range(args.epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        for b in range(0, len(order), args.batch_size):
            rows = [train[i] for i in order[b : b + args.batch_size]]
            batch = encode(rows)
            target = torch.tensor([labels.index(r["label"]) for r in rows])
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                loss = torch.nn.functional.cross_entropy(model(**batch).logits.float(), target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    train_s = time.perf_counter() - start

    # Scoring doubles as the timed inference loop: batches in file order.
    model.eval()
    start = time.perf_counter()
    correct = 0
    predicted = [0, 0]
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        for b in range(0, len(test), args.predict_batch):
            rows = test[b : b + args.predict_batch]
            guess = model(**encode(rows)).logits.argmax(-1).tolist()
            for g, r in zip(guess, rows):
                correct += labels[g] == r["label"]
                predicted[g] += 1
    predict_s = time.perf_counter() - start
    print(json.dumps({"side": "transformers", "precision": args.precision, "train_s": round(train_s, 1),
                      "accuracy": correct / len(test), "predicted": dict(zip(labels, predicted)),
                      "predict_s": round(predict_s, 1), "predict_docs_per_s": round(len(test) / predict_s, 2)}))


def score(args):
    test = read_jsonl(os.path.join(args.data, "test.jsonl"))
    guesses = [json.loads(line)["label"] for line in open(args.predictions, encoding="utf-8")]
    assert len(guesses) == len(test), f"{len(guesses)} predictions for {len(test)} reviews"
    correct = sum(g == r["label"] for g, r in zip(guesses, test))
    print(json.dumps({"accuracy": correct / len(test),
                      "predicted": {l: guesses.count(l) for l in sorted(set(guesses))}}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("split")
    s.add_argument("--imdb", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--train", type=int, default=1000)
    s.add_argument("--test", type=int, default=2000)
    s.add_argument("--seed", type=int, default=42)
    f = sub.add_parser("finetune")
    f.add_argument("--model", required=True)
    f.add_argument("--data", required=True)
    f.add_argument("--max-len", type=int, default=256)
    f.add_argument("--epochs", type=int, default=3)
    f.add_argument("--batch-size", type=int, default=16)
    f.add_argument("--predict-batch", type=int, default=64)
    f.add_argument("--lr", type=float, default=1e-4)
    f.add_argument("--threads", type=int, default=os.cpu_count())
    f.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    f.add_argument("--seed", type=int, default=42)
    c = sub.add_parser("score")
    c.add_argument("--data", required=True)
    c.add_argument("--predictions", required=True)
    args = ap.parse_args()
    {"split": split, "finetune": finetune, "score": score}[args.command](args)


if __name__ == "__main__":
    main()
