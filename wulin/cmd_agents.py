"""``wulin train CONFIG.toml`` and ``wulin evaluate RUN --scenario ID --seeds 3``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from agents.evaluate import DEFAULT_BASELINES
from wulin.console_tables import fit_table
from wulin.options import NETWORKS_OPT

console = Console()


def train(
    config: Path = typer.Argument(..., help="Training TOML (see agents/configs/)."),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default runs/<name>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its newest checkpoint."),
    timesteps: int | None = typer.Option(None, "--timesteps", help="Override total_timesteps (short runs)."),
    n_envs: int | None = typer.Option(None, "--n-envs", help="Override n_envs (environments, one SUMO process each)."),
    networks: list[Path] | None = NETWORKS_OPT,
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
    from sim.files import check_writable_dir

    check_writable_dir(run_dir)  # before any training, not at the first checkpoint
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
    scenario: str = typer.Option(..., "--scenario", help="Scenario id or .toml path to evaluate on."),
    seeds: int = typer.Option(3, "--seeds", help="Number of seeds (1..N; training uses other seeds)."),
    first_seed: int = typer.Option(1, "--first-seed", help="First evaluation seed."),
    baselines: str = typer.Option(",".join(DEFAULT_BASELINES), "--baselines",
                                  help="Comma-separated controllers to compare with ('' for none); "
                                  "tuned parameters where the scenario has them."),
    checkpoint: str | None = typer.Option(None, "--checkpoint", help="A checkpoint instead of model.zip."),
    max_red: float | None = typer.Option(None, "--max-red", help="Serve a stage whose vehicles have "
                                         "waited this many seconds at red (0: no limit); default: "
                                         "the training config's max_red."),
    out: Path | None = typer.Option(None, "--out", help="Keep the experiment folder here (resumable; "
                                    "`wulin report OUT` renders it). Default: a temporary folder."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (default: one per core)."),
    networks: list[Path] | None = NETWORKS_OPT,
) -> None:
    """Run the trained policy and the baselines on the same seeds; mean ± 95 % CI per controller."""
    from agents.evaluate import evaluate as run_eval
    from experiments.spec import scenario_label
    from experiments.tables import COMPARE_KPIS, rich_summary
    from sim.errors import WulinError
    from sim.kpi_registry import COUNTING_RULE, FLAG_RULE

    if seeds < 1:
        raise WulinError(f"--seeds must be >= 1, got {seeds}")
    names = [b.strip() for b in baselines.split(",") if b.strip()]
    seed_list = list(range(first_seed, first_seed + seeds))
    result = run_eval(run, scenario, seed_list, baselines=names, checkpoint=checkpoint,
                      max_red=max_red, out=out,
                      workers=workers, progress=True, console=console)
    sid = scenario_label(result.spec.scenarios[0])
    # output names from ids, never from paths; a checkpoint's evaluation keeps the final model's
    suffix = (f"-{Path(checkpoint).stem}" if checkpoint else "") + \
        (f"-max-red{max_red:g}" if max_red is not None else "")
    csv = run / f"eval-{sid}{suffix}.csv"
    result.runs.to_csv(csv, index=False)
    columns = (*COMPARE_KPIS, "mean_waiting_time", "finished")
    table = rich_summary(result.summary, columns,
                         f"{run.name} on {sid}, seeds {seed_list} (mean ± 95 % CI over seeds)")
    console.print(fit_table(table, console.width))
    console.print(f"{COUNTING_RULE}\n{FLAG_RULE}\nper-seed results: {csv}")


def ship_policy(
    run: Path = typer.Argument(..., help="Run folder written by `wulin train`."),
    name: str = typer.Option(..., "--name", help="Name of the shipped policy (agents/policies/NAME)."),
    command: str = typer.Option(..., "--command", help="The training command that made the run "
                                "(recorded in provenance.json)."),
    eval_seeds: str = typer.Option("1,2,3", "--eval-seeds", help="Seeds of the reported figures."),
) -> None:
    """Ship a trained policy in the repository: weights, config and provenance (agents.shipped)."""
    from agents.shipped import ship_policy as ship

    seeds = [int(s) for s in eval_seeds.split(",") if s.strip()]
    dest = ship(run, name, command, seeds)
    console.print(f"shipped -> {dest} (use: --controller policy:{name})")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("ship-policy")(ship_policy)
