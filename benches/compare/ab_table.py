"""The table of benches/compare/ab.sh: for every case, the median over the runs of each build's
per-case median time, after / before (below 1 is faster), and the median and range of the
paired ratios (run N of after against run N of before, which ran next to it).
Usage: ab_table.py OUT_DIR
       ab_table.py --pair OUT_DIR BEFORE_LABEL AFTER_LABEL   (two labels of rotate.sh's runs)"""

import glob
import json
import re
import statistics
import sys


def runs_of_label(out, label):
    """The files LABEL-N.jsonl of OUT (not those of a longer label that starts the same)."""
    name = re.compile(re.escape(label) + r"-[0-9]+\.jsonl$")
    return sorted(p for p in glob.glob(f"{out}/{label}-*.jsonl") if name.search(p))


def medians(out, label):
    """{case id: median over runs of median_s}, and the GEMM peaks, for before or after."""
    times, peaks = {}, []
    for path in runs_of_label(out, label):
        for line in open(path):
            r = json.loads(line)
            if r.get("op") == "gemm_peak":
                peaks.append(r["gflops"])
            elif "median_s" in r and "cell" in r:
                case = f"{r['cell']}/h{r['hidden']}/b{r['batch']}/t{r['seq']}/{r['op']}"
                times.setdefault(case, []).append(r["median_s"])
    return {c: statistics.median(v) for c, v in times.items()}, peaks


def paired(out, first="before", second="after"):
    """{case id: [second_n / first_n for every round n run by both]}."""
    ratios = {}
    for path in runs_of_label(out, first):
        runs = [runs_of(path), runs_of(path.replace(f"/{first}-", f"/{second}-"))]
        for case, b in runs[0].items():
            if case in runs[1]:
                ratios.setdefault(case, []).append(runs[1][case] / b)
    return ratios


def runs_of(path):
    """{case id: median_s} of one run's JSON lines."""
    out = {}
    for line in open(path):
        r = json.loads(line)
        if "median_s" in r and "cell" in r:
            out[f"{r['cell']}/h{r['hidden']}/b{r['batch']}/t{r['seq']}/{r['op']}"] = r["median_s"]
    return out


def main(out, first="before", second="after"):
    before, peak_b = medians(out, first)
    after, peak_a = medians(out, second)
    pairs = paired(out, first, second)
    print("| case | before (ms) | after (ms) | after / before | paired: median [range] |")
    print("|---|---|---|---|---|")
    ratios = []
    for case in before:
        if case in after:
            ratio = after[case] / before[case]
            ratios.append(ratio)
            p = pairs[case]
            print(f"| {case} | {before[case] * 1e3:.3f} | {after[case] * 1e3:.3f} | {ratio:.3f} "
                  f"| {statistics.median(p):.3f} [{min(p):.2f}, {max(p):.2f}] |")
    if peak_b and peak_a:
        gb, ga = statistics.median(peak_b), statistics.median(peak_a)
        print(f"| GEMM peak (GFLOP/s) | {gb:.1f} | {ga:.1f} | {ga / gb:.3f} | |")
    if ratios:
        slower = sum(r > 1.05 for r in ratios)
        print(f"\n{len(ratios)} cases; after / before: median {statistics.median(ratios):.3f}, "
              f"best {min(ratios):.3f}, worst {max(ratios):.3f}; more than 5% slower: {slower}")


if __name__ == "__main__":
    if sys.argv[1] == "--pair":
        main(*sys.argv[2:5])
    else:
        main(sys.argv[1])
