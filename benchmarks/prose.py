"""The Markdown of each README and docs block, written from one result file (see ``benchmarks/tables.py``).

Every function takes ``(path, data)`` of a result file and returns Markdown; sentences about a
variant that the result does not hold are left out. Speed-ups are those of
``benchmarks.summary.summary_rows``: per-round ratios of the interleaved bench (p50 ratios for
results written before it), marked ``?`` when too scattered for a verdict.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.summary import format_summary, summary_rows

NO_SUITE = "No suite result yet: `make bench` (benchmarks/run.py) writes one into benchmarks/results/."
NO_RUNTIME_MEMORY = ("`python benchmarks/runtime_memory.py` measures the peak memory of `edgeunet predict` and records "
                     "it in benchmarks/results/.")
NO_DEMO = ("`make demo` prints its figures as it goes; `python benchmarks/demo_time.py` records its time and "
           "figures in benchmarks/results/.")
NO_DDP = ("`python benchmarks/ddp.py` compares the best validation Dice of 1 and 2 CPU processes on the synthetic set "
          "and records it in benchmarks/results/.")


def _version(text: str | None) -> str:
    """``"2.13.0+cpu"`` -> ``"2.13 CPU"``; ``"1.32.0"`` -> ``"1.32"``."""
    if not text or text == "not installed":
        return "not installed"
    number, _, local = text.partition("+")
    short = ".".join(number.split(".")[:2])
    return f"{short} {local.upper()}" if local else short


def isa_text(flags: list[str]) -> str:
    """``"AVX2 without VNNI"``, ``"AVX-512 with VNNI"``, ``"NEON with dot-product"``: what decides INT8 speed."""
    from edgeunet.env import INT8_DOT_FLAGS

    flags = set(flags)
    arm = bool(flags & {"neon", "asimd"})
    base = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "NEON" if arm else "no SIMD flags"
    dot = "dot-product" if arm else "VNNI"
    return f"{base} {'with' if flags & INT8_DOT_FLAGS else 'without'} {dot}"


def machine_text(env: dict) -> str:
    """``"AMD EPYC, 2 cores, AVX2 without VNNI, ONNX Runtime 1.32, torch 2.13 CPU"`` (+ edgeunet version and commit)."""
    cpu, versions = env["cpu"], env.get("versions", {})
    text = (f"{cpu['model']}, {cpu['usable_cores']} cores, {isa_text(cpu.get('flags', []))}, "
            f"ONNX Runtime {_version(versions.get('onnxruntime'))}, torch {_version(versions.get('torch'))}")
    if env.get("commit"):  # results with provenance say which code measured them
        text += f", edgeunet {env['edgeunet']} at {env['commit'][:9]}"
    return text


def _suite(data: dict) -> tuple[dict[str, dict], list[dict], list[int]]:
    lines = summary_rows(data, data["suite"]["variants"])
    return {line["variant"]: line for line in lines}, lines, sorted(data["settings"]["sizes"])


def _minutes(data: dict) -> str:
    return f"{data['suite']['time_s']['total'] / 60:.1f} min"


def _date(path: Path) -> str:
    from benchmarks.results_files import date_of

    return date_of(path, {})


def suite_table(path: Path, data: dict) -> str:
    """docs/benchmarks.md: heading with the machine, the suite's summary table and its footnote."""
    _, lines, sizes = _suite(data)
    where = f"{machine_text(data['environment'])}; `make bench`, {_date(path)}, {_minutes(data)}"
    heading = f"### Current results ({where})"
    return f"{heading}\n\n{format_summary(lines, sizes)}"


def suite_benchmarks(path: Path, data: dict) -> str:
    """benchmarks/README.md: the same table, with the machine and the result files."""
    _, lines, sizes = _suite(data)
    return (f"Measured on {machine_text(data['environment'])}, {_date(path)} ({_minutes(data)} in all):\n\n"
            f"{format_summary(lines, sizes)}\nFiles: `results/{path.stem}.json` (everything), `.csv`, `.md`, `.png` "
            f"and `-summary.md`.")


NO_SUITE_TRANSFORMER = ("No result yet: `python benchmarks/run.py --variants unet-ds,unet-attention,unet-vit --tag "
                        "transformer` writes one into benchmarks/results/.")


def suite_tagged(path: Path, data: dict) -> str:
    """A suite run of some variants (``benchmarks/run.py --tag``): its table, the machine, the command and files."""
    _, lines, sizes = _suite(data)
    from benchmarks.monai_reference import LABEL as MONAI

    labels = ",".join(v["label"] for v in data["suite"]["variants"] if v["label"] != MONAI)
    return (f"Measured on {machine_text(data['environment'])}, {_date(path)} ({_minutes(data)} in all) by "
            f"`python benchmarks/run.py --variants {labels} --tag {data['suite']['tag']}`:\n\n"
            f"{format_summary(lines, sizes)}\nFiles: `benchmarks/results/{path.stem}.json` (everything), `.csv`, "
            f"`.md`, `.png` and `-summary.md`.")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _x(line: dict, size: int, kind: str = "onnx-int8") -> str | None:
    ratio = (line.get("speedups", {}).get(size) or {}).get(kind)
    if not ratio:
        return None
    return f"{ratio['ratio']:.2f}x" + ("?" if ratio.get("noisy") else "")


def _p50(line: dict, size: int, kind: str) -> float | None:
    return line["p50_ms"][size][kind]


def _layout_sentences(new: dict, old: dict, sizes: list[int]) -> list[str]:
    small, large = sizes[0], sizes[-1]
    out = [f"the same variant as edgeunet 0.1 built it (`{old['variant']}`) ran INT8 {_x(old, small)} and "
           f"{_x(old, large)} as fast as its FP32 file."]
    shapes = ((small, "onnx-fp32"), (small, "onnx-int8"), (large, "onnx-int8"))
    figures = [_p50(line, s, k) for line in (new, old) for s, k in shapes]
    if None not in figures and new["macs"] and old["macs"]:
        out.append(f"The new layout counts {new['macs'] / 1e9:.2f} vs {old['macs'] / 1e9:.2f} GMACs at {small} px and "
                   f"runs FP32 in {figures[0]:.1f} vs {figures[3]:.1f} ms and INT8 in {figures[1]:.1f} vs "
                   f"{figures[4]:.1f} ms ({figures[2]:.1f} vs {figures[5]:.1f} ms at {large} px), with Dice "
                   f"{new['dice']['onnx-fp32']:.3f} vs {old['dice']['onnx-fp32']:.3f}.")
    return out


def suite_findings(path: Path, data: dict) -> str:
    """README (the headline result): what the suite's table shows, in sentences, with the Pareto plot."""
    by_variant, _, sizes = _suite(data)
    budget = data["suite"]["budget"]
    small, large = sizes[0], sizes[-1]
    text = [f"Every variant is trained briefly ({budget['train_epochs'] * budget['samples_per_epoch']} samples at "
            f"{budget['img_size']} px, pruned models fine-tuned for {_count(budget['finetune_epochs'], 'epoch')}), "
            "so Dice "
            "shows a short training."]
    new, old = by_variant.get("unet-ds"), by_variant.get("unet-ds-0.1")
    if new and _x(new, small):
        text.append(f"With the INT8-friendly layout the default edge model `unet-ds` runs INT8 {_x(new, small)} "
                    f"({small} px) and {_x(new, large)} ({large} px) as fast as its own FP32 ONNX, with Dice "
                    f"{new['dice']['onnx-int8']:.4f} against {new['dice']['onnx-fp32']:.4f} in FP32"
                    + (";" if old else "."))
        if old:
            text += _layout_sentences(new, old, sizes)
    others = [f"`{name}` {_x(by_variant[name], small)} / {_x(by_variant[name], large)}"
              for name in ("unet-mobile", "unet-mobile-0.1", "unet-attention") if name in by_variant
              and _x(by_variant[name], small)]
    if others:
        text.append(f"INT8 speed-ups ({small} px / {large} px): {', '.join(others)}.")
    text.append("Files: [benchmarks/results/](benchmarks/results/), rerun: "
                "[benchmarks/README.md](benchmarks/README.md).")
    plot = path.with_suffix(".png")
    image = f"\n\n![Pareto plot](benchmarks/results/{plot.name})" if plot.is_file() else ""
    return " ".join(text) + image


def int8_speedup(path: Path, data: dict) -> str:
    """docs/export.md: the measured INT8 speed-up of the default model, with its interval."""
    from edgeunet.bench.ratios import ratio_text

    by_variant, _, sizes = _suite(data)
    ratios = {s: by_variant["unet-ds"]["speedups"][s]["onnx-int8"] for s in sizes} if "unet-ds" in by_variant else {}
    parts = [f"{ratio_text(ratio, unit='x')} at {s} px" for s, ratio in ratios.items() if ratio]
    if not parts:
        return ""
    how = ("median of interleaved rounds [quartiles]" if any(r and r["rounds"] for r in ratios.values())
           else "p50 of each")
    return (f"In the benchmark suite (`make bench` on {data['environment']['cpu']['model']}, {_date(path)}) the "
            f"`unet-ds` INT8 file runs {' and '.join(parts)} as fast as its FP32 file (FP32 / INT8 time, {how}).")


def machine_short(result: dict) -> str:
    cpu = result["provenance"]["cpu"]
    return f"the {cpu['usable_cores']}-core {cpu['model']}"


def runtime_memory(path: Path, data: dict) -> str:
    """docs/runtime.md: peak RSS of ``edgeunet predict`` per image size and precision."""
    rss = {(r["precision"], r["image"]): r["peak_rss_mb"] for r in data["rows"]}
    sizes = list(dict.fromkeys(r["image"] for r in data["rows"]))
    big, small = sizes[0], sizes[-1]
    return (f"Peak memory of `edgeunet predict` with the default `{data['model']}` and {data['rows'][0]['tile']} px "
            f"tiles, torch not imported ({machine_short(data)}, {data['date']}, `benchmarks/runtime_memory.py`): "
            f"a {big} image peaks at {rss[('int8', big)]:.0f} MB RSS with the INT8 file and "
            f"{rss[('fp32', big)]:.0f} MB with FP32; one {small} image at {rss[('int8', small)]:.0f} MB and "
            f"{rss[('fp32', small)]:.0f} MB.")


def demo(path: Path, data: dict) -> str:
    """docs/index.md: time and figures of the quickstart."""
    minutes, seconds = divmod(round(data["seconds"]), 60)
    search = data.get("int8_search") or {}
    kept = (f"; the INT8 search kept {search['kept']} ({search['speedup']:.2f}x as fast as FP32 at {search['size']} px "
            "in its timing)") if search.get("kept") and search.get("speedup") else ""
    drop = f", INT8 Dice drop {data['int8_dice_drop']:.4f}" if data.get("int8_dice_drop") is not None else ""
    pruned = (f"pruned {data['parameters'] / 1e6:.3f} M -> {data['pruned_parameters'] / 1e6:.3f} M parameters "
              f"(-{data['pruned_reduction']:.0%}) with Dice {data['pruned_dice']:.3f} after fine-tuning{drop}{kept}")
    return (f"On {machine_short(data)} ({data['date']}, `benchmarks/demo_time.py`), `edgeunet quickstart` (what "
            f"`make demo` runs once set up; the setup is not included) took {minutes} min {seconds} s: validation "
            f"Dice {data['train_dice']:.3f}, {pruned}, and the benchmark table at the end.")


def ddp(path: Path, data: dict) -> str:
    """docs/training.md: best validation Dice of 1 and 2 CPU processes per configuration."""
    shown = [o for o in data["rows"][0]["options"] if o not in ("--data", "synthetic", "--no-progress")]
    options = " ".join(shown[:shown.index("--epochs")] if "--epochs" in shown else shown)
    runs = "; ".join(f"{row['what']}: {row['best_dice']['1']:.4f} (1 process) vs {row['best_dice']['2']:.4f} "
                     "(2 processes)" for row in data["rows"])
    return (f"Two CPU processes reach the Dice of one process with the same total batch (best validation Dice, gloo, "
            f"{machine_short(data)}, {data['date']}, `benchmarks/ddp.py`; `{options}` on the synthetic set): {runs}.")


NO_RUNTIMES = ("Run `edgeunet export CKPT --formats auto --int8` and `edgeunet bench` over its files to compare the "
               "runtimes on your machine.")
NO_VOLUME_MEMORY = "`python benchmarks/volume_memory.py` measures the peak memory of a whole volume."


def runtimes(path: Path, data: dict) -> str:
    """docs/formats.md: one `edgeunet bench` row per file of an export with every format, per size."""
    cpu = data["environment"]["cpu"]
    sizes = sorted({r["size"] for r in data["rows"]})
    head = "| file | runtime | precision | " + " | ".join(f"{s} px: p50 ms | x vs ORT FP32 [quartiles]" for s in sizes)
    lines = [head + " | Dice |", "|---|---|---|" + "---|---|" * len(sizes) + "---|"]
    rows = {(r["model"], r["size"]): r for r in data["rows"]}
    for label in dict.fromkeys(r["model"] for r in data["rows"]):
        first = next(r for r in data["rows"] if r["model"] == label)
        cells = []
        for size in sizes:
            r = rows.get((label, size))
            if r is None or r["status"] != "ok":
                cells += ["-", "skipped: fixed size" if r is not None and r["status"] == "skipped" else "-"]
                continue
            ratio = f"{r['ratio']:.2f} [{r['ratio_q25']:.2f}-{r['ratio_q75']:.2f}]" + ("?" if r["noisy"] else "")
            cells += [f"{r['latency_ms']['p50']:.1f}", ratio]
        dice = "-" if first.get("mean_dice") is None else f"{first['mean_dice']:.4f}"
        lines.append(f"| `{label}` | {first['backend']} | {first['precision']} | {' | '.join(cells)} | {dice} |")
    auto = data.get("auto")
    shipped = ""
    if auto:
        verdict = "as fast as the fastest row" if auto["auto_is_fastest"] else "slower than the fastest row"
        shipped = (f" `--formats auto --int8` shipped `{auto['shipped']}` ({auto['chosen']}): "
                   f"{verdict} (within {auto['tolerance']:.0%} of its p50) at every size it takes.")
    return ("\n".join(lines) + f"\n\n`edgeunet bench` at {', '.join(map(str, sizes))} px, batch 1, "
            f"{data['environment']['threads']} threads, on the {cpu['usable_cores']}-core {cpu['model']} "
            f"({', '.join(cpu['flags'])}), {data['date']} (? = too scattered for a verdict).{shipped}"
            f"{_int8_range(data)} File: `benchmarks/results/{path.name}` (`benchmarks/runtimes.py`).")


def _int8_range(data: dict) -> str:
    """" INT8 ran A to B times as fast as ONNX Runtime FP32 ...": the INT8 rows' ratios, slower ones, the fastest."""
    ok = [r for r in data["rows"] if r["status"] == "ok" and r["latency_ms"] and r["ratio"]]
    ratios = [r["ratio"] for r in ok if r["precision"] == "int8"]
    if not ratios:
        return ""
    slower = sorted({f"`{r['model']}`" for r in ok if r["precision"] == "int8" and r["ratio"] < 1})
    fastest = {size: min((r for r in ok if r["size"] == size), key=lambda r: r["latency_ms"]["p50"])
               for size in sorted({r["size"] for r in ok})}
    best = "; ".join(f"{size} px `{r['model']}` ({r['backend']} {r['precision']})" for size, r in fastest.items())
    return (f" INT8 ran {min(ratios):.2f} to {max(ratios):.2f} times as fast as ONNX Runtime FP32 across the runtimes"
            f" and sizes" + (f" ({', '.join(slower)} slower than it)" if slower else "") + f"; fastest: {best}.")


def volume_memory(path: Path, data: dict) -> str:
    """docs/3d.md: peak RSS of one whole volume through the torch-free Segmenter."""
    shape = "x".join(str(v) for v in data["volume"]["shape"])
    return (f"A {shape} {data['volume']['dtype']} volume ({data['volume_mb']:.0f} MB) through the torch-free "
            f"`Segmenter` with `{data['model']}` {data['precision'].upper()} ({data['tile']}^3 windows, overlap "
            f"{data['overlap']}) peaked at {data['peak_rss_mb']:.0f} MB RSS, torch not imported "
            f"({machine_short(data)}, {data['date']}, `benchmarks/volume_memory.py`).")


NO_REPEATABILITY = "`python benchmarks/repeatability.py` runs the same bench five times and compares the ratios."


def repeatability(path: Path, data: dict) -> str:
    """docs/benchmarks.md: the INT8/FP32 ratio of back-to-back bench runs of the same two files."""
    parts = [f"{size} px: " + ", ".join(f"{v:.2f}" for v in s["ratios"]) + f" (spread {s['spread']:.1%})"
             for size, s in data["sizes"].items()]
    verdict = "within" if data["agree"] else "beyond"
    return (f"Figures that hold: {len(data['runs'])} back-to-back `edgeunet bench {data['fp32']} {data['int8']}` "
            f"runs on {machine_short(data)} ({data['date']}, `benchmarks/repeatability.py`) gave INT8 speed-ups of "
            f"{'; '.join(parts)}, {verdict} {data['tolerance']:.0%} of each other. "
            + SPINNING_SENTENCES[data.get("spinning", "off")])


# What the bench's ONNX Runtime sessions did between calls (``edgeunet bench --spinning``), by the recorded mode;
# results from before the mode was recorded ran with spinning off.
SPINNING_SENTENCES = {
    "run": "The rows' ONNX Runtime sessions spin their intra-op threads within a call and stop when it returns "
           "(`--spinning run`, as the runtime ships), so no idle session steals the cores of the row being timed.",
    "off": "The rows' ONNX Runtime sessions ran with intra-op spinning off, so no idle session's threads "
           "steal the cores of the row being timed.",
    "always": "The rows' ONNX Runtime sessions kept spinning between calls (`--spinning always`), so an idle "
              "session's threads compete with the row being timed.",
}



NO_UNET_VIT_CHOICE = ("When to choose `unet-vit`: `python benchmarks/run.py --variants unet-ds,unet-attention,unet-vit "
                      "--tag transformer` and `python benchmarks/recipe.py --set models` measure it.")


def _span(values: list[float]) -> str:
    """``1.3x``, or ``1.2-1.4x`` when the values differ at one decimal."""
    low, high = f"{min(values):.1f}", f"{max(values):.1f}"
    return f"{low}x" if low == high else f"{low}-{high}x"


def unet_vit_choice(path: Path, data: dict) -> str:
    """README.md and docs/models.md: when to choose ``unet-vit``, from the tagged suite run (``path``, ``data``) and
    the newest ``recipe-models`` file beside it (held-out Dice on the development set)."""
    from benchmarks.recipe import verdict
    from benchmarks.results_files import latest

    rows, _, sizes = _suite(data)
    vit, ds = rows.get("unet-vit"), rows.get("unet-ds")
    if not vit or not ds:
        return NO_UNET_VIT_CHOICE + "\n"
    speed = []
    for size in sizes:
        ratio = (vit.get("speedups", {}).get(size) or {}).get("onnx-int8")
        if ratio:
            speed.append(f"{ratio['ratio']:.2f}x at {size} px (quartiles {ratio['ratio_q25']:.2f}-"
                         f"{ratio['ratio_q75']:.2f})")
    slower = [_p50(vit, s, "onnx-int8") / _p50(ds, s, "onnx-int8") for s in sizes
              if _p50(vit, s, "onnx-int8") and _p50(ds, s, "onnx-int8")]
    dice = {name: rows[name]["dice"].get("onnx-fp32") for name in ("unet-vit", "unet-ds", "unet-attention")
            if name in rows}
    text = (f"When to choose `unet-vit` (measured on {machine_text(data['environment'])}, {_date(path)}). Its INT8 "
            f"file runs {' and '.join(speed)} as fast as its own FP32 file in ONNX Runtime (medians of interleaved "
            f"rounds), at {_span(slower)} the latency of `unet-ds` INT8 and "
            f"{vit['macs'] / ds['macs']:.2f}x its MACs. On the synthetic set (one seed, the suite's budget) it scores "
            f"{dice['unet-vit']:.3f} Dice, against {dice['unet-ds']:.3f} for `unet-ds`"
            + (f" and {dice['unet-attention']:.3f} for `unet-attention`" if "unet-attention" in dice else "") + ".")
    found = latest(path.parent, "recipe-models")
    beats_everywhere = False
    if found:
        real = found[1]
        pairs = [verdict(real, case, "unet-vit, new recipe", "unet-ds, new recipe") for case in real["cases"]]
        pairs = [p for p in pairs if p]
        drops = [f"{row['int8']['dice_drop']:+.4f}" for case in real["cases"].values()
                 for label, row in case["configs"].items() if "int8" in row and "dice_drop" in row["int8"]]
        text += (f" On the real development set, at one training budget and {len(real['seeds'])} seeds: "
                 f"{' '.join(pairs)}" + (f" INT8 costs it {' and '.join(drops)} Dice there (FP32 - INT8)." if drops
                                         else ""))
        beats_everywhere = bool(pairs) and all(" beats " in p for p in pairs)
    if beats_everywhere:
        text += " Choose it over `unet-ds` where its latency fits."
    else:
        text += (" So `unet-ds` stays the default. Try `unet-vit` where a pixel's class depends on context far beyond"
                 " its neighbourhood, and compare the two on your own data (`benchmarks/recipe.py --set models`).")
    return text + "\n"
