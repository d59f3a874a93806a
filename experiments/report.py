"""``wulin report EXP_DIR``: one self-contained HTML file an engineer can read and forward.

Sections: the comparison summary (mean and 95 % CI over seeds), bar charts with confidence
intervals, paired differences against the baseline controller (and of each what-if against
the first variation) with significance tests, a map of the district coloured by intersection
level of service per controller, network delay over time, and per-intersection tables.
Charts are matplotlib PNGs embedded as base64, so the file needs nothing else to open.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.kpis import LOS_LIMITS, los, summarise_signals
from experiments.results import load_experiment, read_run_table
from experiments.spec import ExperimentSpec, scenario_label
from experiments.stats import paired_differences, summary_table
from sim.kpi_registry import (
    CHART_KPIS,
    COUNTING_RULE,
    FLAG_RULE,
    KPI_BY_COLUMN,
    KPIS,
)

LOS_COLOURS = {"A": "#1a9850", "B": "#91cf60", "C": "#d9ef8b", "D": "#fee08b", "E": "#fc8d59",
               "F": "#d73027", "-": "#bbbbbb"}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.meta{color:#666;font-size:13px}.sig{font-weight:bold}
.better{background:#e6f4ea}.worse{background:#fdecea}img{max-width:100%}
details{margin:.5em 0}summary{cursor:pointer;font-weight:600}
.los{display:inline-block;width:1.4em;text-align:center;border-radius:3px}
tr.flagged td{background:#fdecea;color:#b00020}
"""


def _fmt(value: Any, fmt: str = "{:.1f}") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return fmt.format(value)


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def _los_badge(letter: str) -> str:
    return f'<span class="los" style="background:{LOS_COLOURS.get(letter, "#bbb")}">{letter}</span>'


def _clock(seconds: float) -> str:
    from sim.scenario import format_clock

    return format_clock(seconds)


# ------------------------------------------------------------------ sections
def _summary_section(summ: pd.DataFrame, kpis: list[str]) -> str:
    out = []
    for (sc, var), g in summ.groupby(["scenario", "variation"], sort=False):
        head = "".join(f"<th>{html.escape(KPI_BY_COLUMN[k].label)}"
                       f"{' (' + KPI_BY_COLUMN[k].unit + ')' if KPI_BY_COLUMN[k].unit else ''}</th>"
                       for k in kpis)
        rows = []
        for _, r in g.iterrows():
            cells = "".join(
                f"<td>{_fmt(r[k], KPI_BY_COLUMN[k].fmt)}"
                f"{' ± ' + _fmt(r[k + '_ci'], KPI_BY_COLUMN[k].fmt) if math.isfinite(r[k + '_ci']) else ''}</td>"
                for k in kpis)
            flag = r.get("flag") or ""
            cls = " class=flagged" if flag else ""
            rows.append(f"<tr{cls}><td class=l>{html.escape(r['controller'])}</td><td>{r['n']}</td>{cells}"
                        f"<td class=l>{html.escape(flag)}</td></tr>")
        out.append(f"<h3>{html.escape(scenario_label(sc))} · {html.escape(var)}</h3><table><tr><th class=l>controller</th>"
                   f"<th>seeds</th>{head}<th class=l>flagged runs</th></tr>{''.join(rows)}</table>")
    return "\n".join(out)


def _bar_charts(summ: pd.DataFrame, controllers: list[str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    kpis = [k for k in CHART_KPIS if k in summ.columns]
    groups = list(dict.fromkeys(zip(summ["scenario"], summ["variation"], strict=True)))
    fig, axes = plt.subplots(1, len(kpis), figsize=(3.6 * len(kpis), 3.6 + 0.15 * len(groups)),
                             squeeze=False)
    cmap = plt.get_cmap("tab10")
    width = 0.8 / max(len(controllers), 1)
    x = np.arange(len(groups))
    for ax, k in zip(axes[0], kpis, strict=True):
        for i, c in enumerate(controllers):
            vals, errs = [], []
            for sc, var in groups:
                r = summ[(summ["scenario"] == sc) & (summ["variation"] == var) & (summ["controller"] == c)]
                vals.append(float(r[k].iloc[0]) if len(r) else np.nan)
                e = float(r[k + "_ci"].iloc[0]) if len(r) else np.nan
                errs.append(e if math.isfinite(e) else 0.0)
            ax.bar(x + (i - (len(controllers) - 1) / 2) * width, vals, width, yerr=errs, capsize=3,
                   label=c, color=cmap(i % 10))
        kp = KPI_BY_COLUMN[k]
        ax.set_title(f"{kp.label}" + (f" ({kp.unit})" if kp.unit else ""), fontsize=10)
        ax.set_xticks(x)
        ax.set_xticklabels([f"{v}\n{scenario_label(s)}" if len(set(summ['scenario'])) > 1 else v for s, v in groups],
                           rotation=30 if len(groups) > 3 else 0, fontsize=8, ha="right" if len(groups) > 3 else "center")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.12), ncol=min(len(controllers), 8),
                      frameon=False)
    fig.suptitle("Mean over seeds with 95 % confidence intervals", fontsize=10, y=1.02 + 0.01 * len(groups))
    return _png(fig)


def _paired_section(diff: pd.DataFrame, against: str, alpha: float = 0.05) -> str:
    if diff.empty:
        return "<p>Nothing to compare (one value only, or no common seeds).</p>"
    kpis = [k for k in dict.fromkeys(diff["kpi"]) if k in KPI_BY_COLUMN]
    keys = [c for c in ("scenario", "variation", "controller") if c in diff.columns]
    out = ["<table><tr>" + "".join(f"<th class=l>{c}</th>" for c in keys) + "<th>pairs</th>" +
           "".join(f"<th>{html.escape(KPI_BY_COLUMN[k].label)}</th>" for k in kpis) + "</tr>"]
    for gk, g in diff.groupby(keys, sort=False):
        g = g.set_index("kpi")
        cells = []
        for k in kpis:
            if k not in g.index:
                cells.append("<td>–</td>")
                continue
            r = g.loc[k]
            kp = KPI_BY_COLUMN[k]
            sig = math.isfinite(r["p"]) and r["p"] < alpha and r["diff"] != 0
            better = (r["diff"] < 0) == kp.lower_is_better
            cls = (" class='sig better'" if better else " class='sig worse'") if sig else ""
            pct = f" ({r['pct']:+.1f} %)" if math.isfinite(r["pct"]) else ""
            ci = f" ± {_fmt(r['diff_ci'], kp.fmt)}" if math.isfinite(r["diff_ci"]) else ""
            cells.append(f"<td{cls}>{'+' if r['diff'] > 0 else ''}{_fmt(r['diff'], kp.fmt)}{ci}{pct}"
                         f"<br><small>p = {_fmt(r['p'], '{:.3f}')}</small></td>")
        n = int(g["n"].iloc[0])
        out.append("<tr>" + "".join(f"<td class=l>{html.escape(str(v))}</td>" for v in gk) +
                   f"<td>{n}</td>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _map_figure(net_file: Path, per_controller: dict[str, pd.DataFrame], title: str,
                closed: set[str] | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from sim.topology import load_signal_specs
    from sim.variations import network_index

    net = network_index(net_file)
    specs = load_signal_specs(net_file)
    n = len(per_controller)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.4 * rows), squeeze=False)
    xs = [p[0] for _, shape in net.outlines for p in shape]
    ys = [p[1] for _, shape in net.outlines for p in shape]
    max_thr = max((float(t["throughput_vph"].max()) for t in per_controller.values() if len(t)), default=1.0)
    for ax, (ctl, table) in zip(axes.flat, per_controller.items(), strict=False):
        for eid, shape in net.outlines:
            hit = closed and (eid in closed)
            ax.plot([p[0] for p in shape], [p[1] for p in shape], color="#7b3294" if hit else "#c8c8c8",
                    lw=2.5 if hit else 0.8, zorder=2 if hit else 1)
        t = table.set_index("signal") if len(table) else table
        for sid, spec in specs.items():
            if sid in t.index:
                d = float(t.loc[sid, "control_delay"])
                thr = float(t.loc[sid, "throughput_vph"])
            else:
                d, thr = math.nan, 0.0
            letter = los(d)
            size = 40 + 260 * (thr / max_thr if max_thr > 0 and math.isfinite(thr) else 0)
            x, y = spec.position
            ax.scatter([x], [y], s=size, color=LOS_COLOURS[letter], edgecolor="#333", lw=0.6, zorder=3)
            if len(specs) <= 40:
                ax.annotate(f"{_fmt(d, '{:.0f}')}", (x, y), fontsize=7, ha="center", va="center", zorder=4)
        ax.set_title(ctl, fontsize=10)
        ax.set_aspect("equal")
        if xs:
            ax.set_xlim(min(xs) - 20, max(xs) + 20)
            ax.set_ylim(min(ys) - 20, max(ys) + 20)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    bounds = [0.0] + [lim for lim, _ in LOS_LIMITS[:-1]]
    labels = [f"{letter}: {lo:g}-{hi:g} s" for (hi, letter), lo in zip(LOS_LIMITS, bounds, strict=True)]
    handles = [Patch(color=LOS_COLOURS[lab[0]], label=lab) for lab in labels]
    handles.append(Patch(color=LOS_COLOURS["F"], label="F: > 80 s"))
    if closed:
        handles.append(Patch(color="#7b3294", label="closure / incident"))
    fig.legend(handles=handles, loc="lower center", ncol=7, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"{title}: level of service per intersection (number: control delay s/veh; "
                 "size: vehicles served)", fontsize=10)
    return _png(fig)


def _delay_series_figure(series: dict[str, pd.DataFrame], measure_begin: float, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.4))
    lo = math.inf
    for ctl, df in series.items():
        if df.empty:
            continue
        # network delay per period and seed, then the mean over seeds
        per = df.groupby(["seed", "time"]).agg(tl=("time_loss", "sum"), left=("left", "sum")).reset_index()
        per["delay"] = per["tl"] / per["left"].where(per["left"] > 0)
        m = per.groupby("time")["delay"].agg(["mean", "min", "max"]).reset_index()
        hours = m["time"] / 60.0  # minutes since midnight
        lo = min(lo, float(hours.min()))
        line = ax.plot(hours, m["mean"], marker="o", ms=3, label=ctl)[0]
        ax.fill_between(hours, m["min"], m["max"], color=line.get_color(), alpha=0.12, lw=0)
    if math.isfinite(lo):
        ax.axvspan(lo, measure_begin / 60.0, color="#eee", zorder=0, label="warm-up")
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 3, 5, 6, 10], integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: _clock(round(t) * 60)))
    ax.tick_params(axis="x", labelsize=8)
    ax.set_ylabel("control delay (s/veh)")
    ax.set_title(f"{title}: network control delay over time (mean over seeds; band: min-max)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=4)
    return _png(fig)


def _signal_table(per_controller: dict[str, pd.DataFrame], approach: dict[str, pd.DataFrame]) -> str:
    ctls = list(per_controller)
    signals = sorted(set().union(*[set(t["signal"]) for t in per_controller.values() if len(t)]))
    head = "".join(f"<th colspan=4>{html.escape(c)}</th>" for c in ctls)
    sub = "<th>delay</th><th>LOS</th><th>queue p95</th><th>veh/h</th>" * len(ctls)
    rows = []
    for s in signals:
        cells = []
        for c in ctls:
            t = per_controller[c].set_index("signal")
            if s in t.index:
                r = t.loc[s]
                cells.append(f"<td>{_fmt(r['control_delay'])}</td><td>{_los_badge(r['los'])}</td>"
                             f"<td>{_fmt(r['queue_p95'])}</td><td>{_fmt(r['throughput_vph'], '{:.0f}')}</td>")
            else:
                cells.append("<td>–</td>" * 4)
        rows.append(f"<tr><td class=l>{html.escape(s)}</td>{''.join(cells)}</tr>")
    out = [f"<table><tr><th class=l rowspan=2>intersection</th>{head}</tr><tr>{sub}</tr>{''.join(rows)}</table>"]
    # approaches, folded
    parts = []
    for c, t in approach.items():
        if t.empty:
            continue
        rws = "".join(
            f"<tr><td class=l>{html.escape(r['signal'])}</td><td class=l>{html.escape(r['edge'])}</td>"
            f"<td>{_fmt(r['control_delay'])}</td><td>{_los_badge(r['los'])}</td>"
            f"<td>{_fmt(r['queue_mean'])}</td><td>{_fmt(r['queue_p95'])}</td><td>{_fmt(r['queue_max'], '{:.0f}')}</td>"
            f"<td>{_fmt(r['throughput_vph'], '{:.0f}')}</td></tr>"
            for _, r in t.sort_values(["signal", "edge"]).iterrows())
        parts.append(f"<details><summary>approaches · {html.escape(c)}</summary><table><tr>"
                     "<th class=l>intersection</th><th class=l>approach edge</th><th>delay s/veh</th>"
                     "<th>LOS</th><th>queue mean</th><th>queue p95</th><th>queue max</th><th>veh/h</th></tr>"
                     f"{rws}</table></details>")
    return "\n".join(out + parts)


# ------------------------------------------------------------------ assembly
def _params_note(spec: ExperimentSpec) -> str:
    """The parameters controllers ran with, where not their defaults (tuned or given)."""
    from experiments.compare import describe_params

    lines = describe_params(spec)
    if not lines:
        return ""
    return ("<p class=meta>Controller parameters: "
            + "<br>".join(html.escape(line) for line in lines) + "</p>")


def build_report(exp_dir: Path | str, out: Path | None = None) -> Path:
    """Write ``report.html`` into an experiment folder (or ``out``); returns its path.

    Raises:
        WulinError: not an experiment folder, or no finished run.
    """
    from sim.scenario import load_scenario

    exp_dir = Path(exp_dir)
    spec, runs = load_experiment(exp_dir)
    manifest = json.loads((exp_dir / "manifest.json").read_text()) if (exp_dir / "manifest.json").is_file() else {}
    controllers = [c for c in spec.controllers if c in set(runs["controller"])]
    baseline = spec.baseline
    test = spec.test
    kpis = [k.column for k in KPIS if k.column in runs.columns]
    summ = summary_table(runs, kpis)
    # keep the declared order of controllers and variations
    order_v = {v.name: i for i, v in enumerate(spec.variations)}
    order_c = {c: i for i, c in enumerate(spec.controllers)}
    summ = summ.sort_values(by=["scenario", "variation", "controller"],
                            key=lambda s: s.map(order_v) if s.name == "variation"
                            else s.map(order_c) if s.name == "controller" else s).reset_index(drop=True)

    total = len(spec.scenarios) * len(spec.variations) * len(spec.controllers) * len(spec.seeds)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(spec.name)} · "
        f"Wulin experiment report</title><style>{CSS}</style></head><body>",
        f"<h1>Experiment {html.escape(spec.name)}</h1>",
        f"<p>{html.escape(spec.description or '')}</p>",
        f"<p class=meta>{len(runs)} of {total} runs finished · scenarios {', '.join(map(scenario_label, spec.scenarios))} · "
        f"controllers {', '.join(spec.controllers)} (baseline <b>{html.escape(baseline)}</b>) · "
        f"seeds {', '.join(map(str, spec.seeds))} · test: paired {test}<br>"
        f"git {html.escape(str(manifest.get('git_commit', '?'))[:12])}"
        f"{' (uncommitted changes)' if manifest.get('git_dirty') else ''} · "
        f"SUMO {html.escape(manifest.get('versions', {}).get('eclipse-sumo', '?'))} · "
        f"created {html.escape(manifest.get('created', '?'))}</p>",
        _params_note(spec),
        "<h2>Summary</h2><p>Mean over seeds ± half-width of the 95 % confidence interval "
        f"(Student t). {html.escape(COUNTING_RULE)} Control delay is the vehicle-weighted time "
        "loss on intersection approaches (HCM-style). "
        f"{html.escape(FLAG_RULE)}</p>",
        _summary_section(summ, kpis),
        "<h2>Comparison charts</h2>", _bar_charts(summ, controllers),
        f"<h2>Paired differences against {html.escape(baseline)}</h2>"
        f"<p>Controller minus {html.escape(baseline)}, paired by seed (same demand), mean ± 95 % CI "
        f"(% of the baseline), p-value of the paired {test}. Shaded: significant at 5 % "
        "(green better, red worse).</p>",
        _paired_section(paired_differences(runs, against="controller", value=baseline, kpis=kpis,
                                           test=test), "controller"),
    ]
    variations = [v.name for v in spec.variations if v.name in set(runs["variation"])]
    if len(variations) > 1:
        ref = variations[0]
        parts += [
            f"<h2>What-if effects against {html.escape(ref)}</h2>"
            f"<p>Each variation minus <b>{html.escape(ref)}</b>, same controller and seed.</p>",
            _paired_section(paired_differences(runs, against="variation", value=ref, kpis=kpis,
                                               test=test), "variation"),
        ]

    from experiments.priority_report import priority_section

    parts.append(priority_section(exp_dir, spec, runs, _png))
    parts.append("<h2>Intersections</h2>")
    for sid in spec.scenarios:
        sc = load_scenario(sid)
        for var in variations:
            sub = runs[(runs["scenario"] == sid) & (runs["variation"] == var)]
            if sub.empty:
                continue
            inter, appr, series = {}, {}, {}
            measure_begin = float(sub["measure_begin"].iloc[0])
            for c in controllers:
                ids = sub[sub["controller"] == c]["run_id"].tolist()
                if not ids:
                    continue
                inter[c] = summarise_signals([read_run_table(exp_dir, r, "intersections") for r in ids])
                appr[c] = summarise_signals([read_run_table(exp_dir, r, "approaches") for r in ids])
                frames = []
                for r, seed in zip(ids, sub[sub["controller"] == c]["seed"], strict=True):
                    f = read_run_table(exp_dir, r, "delay_series")
                    f["seed"] = seed
                    frames.append(f)
                series[c] = pd.concat(frames, ignore_index=True)
            title = f"{scenario_label(sid)} · {var}"
            vdef = next(v for v in spec.variations if v.name == var)
            closed = {e for c in vdef.closures for e in c.edges}
            closed |= {ln.rsplit("_", 1)[0] for c in vdef.closures for ln in c.lanes}
            closed |= {i.lane.rsplit("_", 1)[0] for i in vdef.incidents}
            if vdef.pedestrian_street:
                closed |= set(spec.pedestrian_street_edges)
            parts += [f"<h3>{html.escape(title)}</h3>",
                      _map_figure(sc.net_file, inter, title, closed),
                      _delay_series_figure(series, measure_begin, title),
                      "<p>Per intersection, mean over seeds (LOS from the mean delay).</p>",
                      _signal_table(inter, appr)]
    ev_rows = []
    for rid in runs["run_id"]:
        doc = json.loads((exp_dir / "runs" / rid / "summary.json").read_text())
        for e in doc.get("events", []):
            ev_rows.append(f"<tr><td class=l>{html.escape(rid)}</td><td class=l>{html.escape(e['kind'])}</td>"
                           f"<td class=l>{html.escape(str(e['target']))}</td>"
                           f"<td>{_clock(e['started']) if e['started'] is not None else 'never'}</td>"
                           f"<td>{_clock(e['ended']) if e['ended'] is not None else 'end'}</td></tr>")
    if ev_rows:
        parts.append("<h2>Events applied</h2><details><summary>when each closure, incident and "
                     "failure really started and ended (SUMO-native controllers: the declared "
                     "time; others: the first decision at or after it)</summary><table><tr><th class=l>run</th><th class=l>event</th>"
                     "<th class=l>target</th><th>started</th><th>ended</th></tr>"
                     + "".join(ev_rows) + "</table></details>")
    parts.append("</body></html>")
    path = Path(out) if out else exp_dir / "report.html"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(parts))
    tmp.replace(path)
    return path
