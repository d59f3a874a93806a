"""``wulin train CONFIG.toml`` and ``wulin evaluate RUN --scenario ID --seeds 3``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def train(
    config: Path = typer.Argument(..., help="Training TOML (see agents/configs/)."),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default runs/<name>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its newest checkpoint."),
    timesteps: int | None = typer.Option(None, "--timesteps", help="Override total_timesteps (short runs)."),
    n_envs: int | None = typer.Option(None, "--n-envs", help="Override n_envs (environments, one SUMO process each)."),
) -> None:
    """Train a PPO or DQN policy shared by all signals; checkpoints, TensorBoard logs, resume."""
    from dataclasses import replace

    from agents.config import load_train_config
    from agents.train import TrainingInterrupted
    from agents.train import train as run_train
    from sim.errors import WulinError

    cfg = load_train_config(config)
    if n_envs is not None:
        if n_envs < 1:
            raise WulinError(f"--n-envs must be >= 1, got {n_envs}")
        cfg = replace(cfg, n_envs=n_envs, subprocess=cfg.subprocess or n_envs > 1)
    if timesteps is not None and timesteps < 1:
        raise WulinError(f"--timesteps must be >= 1, got {timesteps}")
    run_dir = out or Path("runs") / cfg.name
    console.print(f"[bold]{cfg.name}[/]: {cfg.algorithm.upper()} on {cfg.scenario}, "
                  f"{cfg.n_envs} env(s), seed {cfg.seed}, {timesteps or cfg.total_timesteps:,} timesteps "
                  f"-> {run_dir}{' (resume)' if resume else ''}")
    try:
        model = run_train(cfg, run_dir, resume=resume, total_timesteps=timesteps)
    except TrainingInterrupted as exc:
        where = exc.checkpoint or "none (stopped while cloning the teacher; --resume clones again)"
        console.print(f"[yellow]interrupted[/] at {exc.timesteps:,} timesteps; checkpoint: "
                      f"{where}\nresume: wulin train {config} --out {run_dir} --resume")
        raise typer.Exit(130) from None
    console.print(f"policy: {model}\nlearning curve: {run_dir / 'learning_curve.png'}\n"
                  f"TensorBoard: tensorboard --logdir {run_dir / 'tb'}")


def evaluate(
    run: Path = typer.Argument(..., help="Run folder written by `wulin train`."),
    scenario: str = typer.Option(..., "--scenario", help="Scenario id to evaluate on."),
    seeds: int = typer.Option(3, "--seeds", help="Number of seeds (1..N; training uses other seeds)."),
    first_seed: int = typer.Option(1, "--first-seed", help="First evaluation seed."),
    baselines: str = typer.Option("field,max-pressure", "--baselines",
                                  help="Comma-separated controllers to compare with ('' for none)."),
    checkpoint: str | None = typer.Option(None, "--checkpoint", help="A checkpoint instead of model.zip."),
) -> None:
    """Run the trained policy as a Controller and the baselines on the same seeds; print a table."""
    from agents.evaluate import evaluate as run_eval
    from agents.evaluate import summary_table
    from sim.errors import WulinError

    if seeds < 1:
        raise WulinError(f"--seeds must be >= 1, got {seeds}")
    names = [b.strip() for b in baselines.split(",") if b.strip()]
    seed_list = list(range(first_seed, first_seed + seeds))

    def show(label: str, seed: int, s: dict[str, float]) -> None:
        console.print(f"  {label:<14} seed {seed}: mean time loss {s['mean_time_loss']:.1f} s, "
                      f"travel time {s['mean_travel_time']:.1f} s")

    df = run_eval(run, scenario, seed_list, baselines=names, checkpoint=checkpoint,
                  on_episode=show, progress=True)
    # a checkpoint's evaluation does not overwrite the final model's
    suffix = f"-{Path(checkpoint).stem}" if checkpoint else ""
    out = run / f"eval-{scenario}{suffix}.csv"
    df.to_csv(out, index=False)
    tab = summary_table(df)
    table = Table(title=f"{run.name} on {scenario}, seeds {seed_list}", header_style="bold")
    table.add_column("controller")
    for col in ("mean time loss (s)", "mean travel time (s)", "mean waiting (s)", "finished"):
        table.add_column(col, justify="right")
    for ctl, r in tab.iterrows():
        table.add_row(
            str(ctl),
            f"{r['mean_time_loss_mean']:.1f} ± {r['mean_time_loss_ci95']:.1f}",
            f"{r['mean_travel_time_mean']:.1f} ± {r['mean_travel_time_ci95']:.1f}",
            f"{r['mean_waiting_time_mean']:.1f}",
            f"{r['finished_mean']:,.0f}",
        )
    console.print(table)
    console.print(f"mean ± 95 % confidence half-width over the seeds (Student t); "
                  f"per-seed results: {out}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
