"""Tables and exact tests of bench/rnn-study.sh's trainings (stdlib only)."""
import glob
import itertools
import json
import os
import statistics
import sys


def mwu_p(a, b):
    """Exact one-sided Mann-Whitney p of 'a tends to be smaller than b'."""
    pooled = a + b
    def u(x, y):
        return sum((xi < yi) + 0.5 * (xi == yi) for xi in x for yi in y)
    obs = u(a, b)
    count = total = 0
    for idx in itertools.combinations(range(len(pooled)), len(a)):
        x = [pooled[i] for i in idx]
        y = [pooled[i] for i in range(len(pooled)) if i not in idx]
        total += 1
        count += u(x, y) >= obs
    return count / total


out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(os.path.join(out, "train-*.json"))):
    _, level, model, seed = os.path.basename(f)[:-5].split("-")
    r = json.load(open(f))
    res = r.get("result", r)
    rows.setdefault(level, {}).setdefault(model, []).append(
        (int(seed), res.get("test_ppl"), res.get("best_val_ppl"), res.get("params"), res.get("status"), res.get("tokens_per_sec")))

print("# Searched recurrent cells vs LSTM vs random cells\n")
for level in ("words", "chars"):
    if level not in rows:
        continue
    print(f"## {level}\n")
    print("| model | seeds | params | test ppl per seed | mean ± sd | val ppl mean | tokens/s | p (< LSTM) | p (< random) |")
    print("|---|---|---|---|---|---|---|---|---|")
    test = {m: [x[1] for x in v if x[1] is not None] for m, v in rows[level].items()}
    for model in ("lstm", "enas", "nas", "random"):
        v = rows[level].get(model)
        if not v:
            continue
        t = test[model]
        val = [x[2] for x in v if x[2]]
        sd = statistics.stdev(t) if len(t) > 1 else 0
        p_l = f"{mwu_p(t, test['lstm']):.2f}" if model != "lstm" and test.get("lstm") else ""
        p_r = f"{mwu_p(t, test['random']):.2f}" if model not in ("random",) and test.get("random") else ""
        print(f"| {model} | {','.join(str(x[0]) for x in v)} | {v[0][3]} | {', '.join(f'{x:.1f}' for x in t)} | "
              f"{statistics.mean(t):.1f} ± {sd:.1f} | {statistics.mean(val):.1f} | {statistics.mean(x[5] for x in v):.0f} | {p_l} | {p_r} |")
    print()
print("p: exact one-sided Mann-Whitney U test that the row's test perplexities are lower "
      "(3 vs 3 seeds: the smallest p possible is 0.05).")
