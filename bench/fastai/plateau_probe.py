"""Probes for the LM plateau of bench/fastai_comparison.sh (bench/RESULTS.md,
2026-11-28): with one epoch of one-cycle at 1e-2, an AWD-LSTM LM sometimes
stays at about the unigram loss and never uses context. These probes ask
where that comes from. Run with the fastai venv's python, one thread.

  dump  --data DIR --spm MODEL --out DIR
        The LM reviews of DIR (bench/fastai/make_data.py's files) through
        fastai's rules and the SentencePiece model MODEL (one that
        ulmfit_fastai.py trained), written twice as token ids, one review a
        line: fastai-{train,valid}.ids numbered as fastai's own pipeline
        numbers them (its vocabulary, by frequency), spm-{train,valid}.ids
        numbered by the SentencePiece model. The same tokens either way.
  fit   --ids PREFIX --vocab N --seed S
        fastai's own Learner (ulmfit_fastai.py's LM, fit_one_cycle(1, 1e-2))
        on PREFIX{train,valid}.ids; prints the validation loss per token.
  trace --ids FILE --seed S [--vocab N] [--clip C] [--beta2 B] [--eps E] [--skip K]
        The same step in plain PyTorch (no fastai), printing for every
        step the loss, the gradient norm and the update norm of each LSTM
        layer, the embedding and the decoder bias, and each layer's mean |c|
        at the window's end. --skip K leaves out the update of a step whose
        gradient norm is over K times its running mean.
"""
import argparse
import math
import pathlib
import random

import torch
import torch.nn.functional as F

EMB, HIDDEN, BATCH, BPTT, DROP_MULT = 128, 384, 32, 70, 0.3


def read_ids(path):
    return [[int(t) for t in line.split()] for line in open(path) if line.strip()]


def dump(args):
    from fastai.text.all import SentencePieceTokenizer, TextDataLoaders
    from ulmfit_fastai import lm_frame
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = SentencePieceTokenizer(sp_model=args.spm)
    dls = TextDataLoaders.from_df(lm_frame(pathlib.Path(args.data)), path=out, text_col="text", is_lm=True, valid_col="is_valid", tok_tfm=tok,
                                  bs=BATCH, seq_len=BPTT, n_workers=1)
    pieces = tok.tok  # the SentencePiece processor behind fastai's tokenizer
    for name, ds in (("train", dls.train_ds), ("valid", dls.valid_ds)):
        with open(out / f"fastai-{name}.ids", "w") as fastai_ids, open(out / f"spm-{name}.ids", "w") as spm_ids:
            for i in range(len(ds)):
                ids = ds[i][0].tolist()
                fastai_ids.write(" ".join(map(str, ids)) + "\n")
                spm_ids.write(" ".join(str(pieces.piece_to_id(dls.vocab[t])) for t in ids) + "\n")
    print(f"fastai vocabulary {len(dls.vocab)}, SentencePiece {pieces.get_piece_size()}")


def fit(args):
    from fastai.text.all import DataLoaders, LMDataLoader, set_seed
    from ulmfit_fastai import lm_learner, quiet_progress
    torch.set_num_threads(1)
    set_seed(args.seed)
    quiet_progress()
    train, valid = ([torch.tensor(d) for d in read_ids(f"{args.ids}{name}.ids")] for name in ("train", "valid"))
    dls = DataLoaders(LMDataLoader(train, bs=BATCH, seq_len=BPTT, shuffle=True),
                      LMDataLoader(valid, bs=BATCH, seq_len=BPTT))
    dls.vocab = [str(i) for i in range(args.vocab)]
    lm = lm_learner(dls)
    lm.fit_one_cycle(1, 1e-2)
    print(f"seed {args.seed}: validation loss per token {float(lm.recorder.values[-1][1]):.4f}")


def cosine(start, end, pct):
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


def trace(args):
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(1)
    docs = read_ids(args.ids)
    random.shuffle(docs)
    ids = torch.tensor([t for d in docs for t in d])
    vocab = args.vocab
    length = (len(ids) - 1) // BATCH
    inputs, targets = ids[:length * BATCH].view(BATCH, length), ids[1:length * BATCH + 1].view(BATCH, length)

    def param(*shape, bound):
        return torch.nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))
    emb = param(vocab, EMB, bound=0.1)
    bias = torch.nn.Parameter(torch.zeros(vocab))
    layers = []
    for n_in, n_out in ((EMB, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, EMB)):
        bound = 1 / math.sqrt(n_out)
        layers.append([param(4 * n_out, n_in, bound=bound), param(4 * n_out, n_out, bound=bound),
                       param(4 * n_out, bound=bound), param(4 * n_out, bound=bound)])
    groups = [{"params": p} for p in layers] + [{"params": [emb]}, {"params": [bias], "weight_decay": 0.0}]
    names = ["lstm0", "lstm1", "lstm2", "embedding", "bias"]
    opt = torch.optim.AdamW(groups, lr=1e-2, betas=(0.8, args.beta2), eps=args.eps, weight_decay=0.01)
    steps = (length + BPTT - 1) // BPTT
    warm = math.floor(steps * 0.25)

    def dropout_mask(shape, p):
        return torch.empty(shape).bernoulli_(1 - p) / (1 - p)
    state, running = [None] * 3, None
    for step in range(steps):
        up = step < warm
        pct = step / warm if up else (step - warm) / max(1, steps - warm)
        lr = 1e-2 * (cosine(1 / 25, 1, pct) if up else cosine(1, 1 / 25 / 1e5, pct))
        beta1 = cosine(0.8, 0.7, pct) if up else cosine(0.7, 0.8, pct)
        for g in opt.param_groups:
            g["lr"], g["betas"] = lr, (beta1, args.beta2)
        x, y = inputs[:, step * BPTT:(step + 1) * BPTT], targets[:, step * BPTT:(step + 1) * BPTT]
        out = F.embedding(x, emb * dropout_mask((vocab, 1), 0.02 * DROP_MULT))
        out = out * dropout_mask((BATCH, 1, EMB), 0.25 * DROP_MULT)
        cells = []
        for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
            n = w_hh.size(1)
            if state[i] is None:
                state[i] = (torch.zeros(1, BATCH, n), torch.zeros(1, BATCH, n))
            weights = [w_ih, F.dropout(w_hh, 0.2 * DROP_MULT), b_ih, b_hh]
            out, h, c = torch._VF.lstm(out, state[i], weights, True, 1, 0.0, True, False, True)
            state[i] = (h.detach(), c.detach())
            cells.append(c.abs().mean().item())
            if i < 2:
                out = out * dropout_mask((BATCH, 1, n), 0.15 * DROP_MULT)
        dropped = out * dropout_mask((BATCH, 1, EMB), 0.1 * DROP_MULT)
        ce = F.cross_entropy((dropped @ emb.t() + bias).reshape(-1, vocab), y.reshape(-1))
        loss = ce + 2 * dropped.pow(2).mean() + (out[:, 1:] - out[:, :-1]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        norms = [math.sqrt(sum(p.grad.pow(2).sum().item() for p in g["params"])) for g in opt.param_groups]
        total = math.sqrt(sum(n * n for n in norms))
        if args.clip:
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], args.clip)
        before = [[p.detach().clone() for p in g["params"]] for g in opt.param_groups]
        skipped = args.skip and running is not None and step > 20 and total > args.skip * running
        if not skipped:
            opt.step()
            running = total if running is None else 0.95 * running + 0.05 * total
        updates = [math.sqrt(sum((p.detach() - b).pow(2).sum().item() for p, b in zip(g["params"], old)))
                   for g, old in zip(opt.param_groups, before)]
        print(f"step {step} loss {ce.item():.3f} lr {lr:.4f}{' SKIPPED' if skipped else ''} | grad "
              + " ".join(f"{k} {v:.3f}" for k, v in zip(names, norms)) + " | update "
              + " ".join(f"{k} {v:.3f}" for k, v in zip(names, updates)) + " | mean |c| "
              + " ".join(f"{v:.2f}" for v in cells), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--data", required=True)
    d.add_argument("--spm", required=True)
    d.add_argument("--out", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--ids", required=True, help="prefix of {train,valid}.ids")
    f.add_argument("--vocab", type=int, required=True)
    f.add_argument("--seed", type=int, default=42)
    t = sub.add_parser("trace")
    t.add_argument("--ids", required=True, help="a train.ids file")
    t.add_argument("--vocab", type=int, default=8000)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--clip", type=float, default=0.0)
    t.add_argument("--beta2", type=float, default=0.99)
    t.add_argument("--eps", type=float, default=1e-5)
    t.add_argument("--skip", type=float, default=0.0)
    args = ap.parse_args()
    {"dump": dump, "fit": fit, "trace": trace}[args.command](args)


if __name__ == "__main__":
    main()
