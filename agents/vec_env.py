"""``SignalVecEnv``: N PettingZoo envs in subprocesses, flattened into one SB3 ``VecEnv``.

Parameter sharing: every signal of every environment is one slot of the vectorised env, so
one stable-baselines3 policy is trained on the experience of all signals at once
(``num_envs = n_envs x n_signals``).  This is what SuperSuit's
``pettingzoo_env_to_vec_env_v1`` + ``concat_vec_envs_v1`` do, written here directly so that

* each worker process owns one SUMO (libsumo allows one simulation per process);
* a SUMO failure inside a worker (:class:`~sim.errors.SimulationError`) restarts that
  environment, and a worker process that dies (a crash inside libsumo) is started again,
  without stopping the training run: the affected slots see a truncated episode;
* finished episodes reset themselves (SB3's ``terminal_observation`` convention) with the
  next seed of a deterministic per-worker seed sequence.

Each finished episode is reported in ``infos[i]["episode"]`` (SB3's Monitor format, so
``rollout/ep_rew_mean`` appears in TensorBoard) and collected in :attr:`episode_log`
(one row per worker episode, for the learning curve).
"""

from __future__ import annotations

import functools
import math
import multiprocessing as mp
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

SEED_BASE = 1_000_000  # training seeds live far from the small seeds used for evaluation


def _env_method(name: str) -> Callable[..., Any]:
    """A picklable caller of the env's method ``name`` (``operator.methodcaller`` style)."""
    return functools.partial(_call_method, name)


def _call_method(name: str, env: Any, *args: Any, **kwargs: Any) -> Any:
    return getattr(env, name)(*args, **kwargs)


def episode_seed(seed: int, worker: int, episode: int) -> int:
    """SUMO seed of a training episode: distinct per run seed, worker and episode."""
    return SEED_BASE + (seed * 64 + worker) * 10_000 + episode


class _EnvRunner:
    """Runs one :class:`~sim.env.WulinParallelEnv` (in a worker process or in-process)."""

    def __init__(self, env_kwargs: dict[str, Any], seed: int, worker: int) -> None:
        self.env_kwargs = env_kwargs
        self.seed = seed
        self.worker = worker
        self.episode = 0
        self.restarts = 0
        self.env: Any = None
        self._start()

    def _start(self) -> None:
        from sim.env import WulinParallelEnv

        self.env = WulinParallelEnv(**self.env_kwargs)
        self.agents = list(self.env.possible_agents)

    def spaces(self) -> tuple[spaces.Space, spaces.Space, list[str]]:
        a = self.agents[0]
        return self.env.observation_space(a), self.env.action_space(a), self.agents

    def _new_episode(self) -> np.ndarray:
        s = episode_seed(self.seed, self.worker, self.episode)
        obs, _ = self.env.reset(seed=s)
        self._ret = np.zeros(len(self.agents))
        self._len = 0
        self._queue = 0.0
        self._t0 = time.time()
        self._seed_now = s
        return np.stack([obs[a] for a in self.agents])

    def reset(self) -> np.ndarray:
        return self._new_episode()

    def call(self, request: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]) -> Any:
        """``fn(env, *args, **kwargs)`` on this worker's env (``SignalVecEnv.env_method``)."""
        fn, args, kwargs = request
        return fn(self.env, *args, **kwargs)

    def steps_per_episode(self) -> int:
        eng = self.env.engine
        cfg = eng.config
        span = eng.end - eng.scenario.begin
        per = cfg.cycle if cfg.action_mode == "splits" else cfg.delta_t
        return max(1, math.ceil(span / per - 1e-9))

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, dict[str, Any]]:
        from sim.errors import SimulationError

        try:
            obs, rew, _, trunc, _ = self.env.step({a: actions[i] for i, a in enumerate(self.agents)})
        except SimulationError as exc:
            return self._restart(f"{type(exc).__name__}: {exc}")
        r = np.array([rew[a] for a in self.agents], dtype=np.float32)
        o = np.stack([obs[a] for a in self.agents])
        self._ret += r
        self._len += 1
        self._queue += self.env.engine.info()["queue"]
        done = bool(trunc[self.agents[0]])
        info: dict[str, Any] = {}
        if done:
            info = self._finish(o, crashed="")
            o = self._new_episode()
        return o, r, done, info

    def _finish(self, terminal_obs: np.ndarray, crashed: str) -> dict[str, Any]:
        info = {
            "terminal_observation": terminal_obs,
            "returns": self._ret.copy(),
            "length": self._len,
            "elapsed": time.time() - self._t0,
            "row": {
                "worker": self.worker, "episode": self.episode, "seed": self._seed_now,
                "steps": self._len, "mean_return": float(self._ret.mean()),
                "mean_queue": self._queue / max(self._len, 1),
                "wall_s": time.time() - self._t0, "crashed": crashed,
            },
        }
        self.episode += 1
        return info

    def _restart(self, why: str) -> tuple[np.ndarray, np.ndarray, bool, dict[str, Any]]:
        """SUMO failed: drop the environment, start a fresh one, report a truncated episode."""
        self.restarts += 1
        try:
            self.env.close()
        except Exception:  # the simulation is already gone
            pass
        self._start()
        last = np.zeros((len(self.agents), *self.spaces()[0].shape), dtype=np.float32)
        info = self._finish(last, crashed=why.splitlines()[0][:200])
        o = self._new_episode()
        return o, np.zeros(len(self.agents), np.float32), True, info

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


def _worker(remote: Any, env_kwargs: dict[str, Any], seed: int, worker: int) -> None:
    # Ctrl-C reaches the whole process group: the parent decides (checkpoint, then close us);
    # a worker that died of it would only be restarted
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        runner = _EnvRunner(env_kwargs, seed, worker)
        remote.send(("ok", runner.spaces()))
    except Exception as exc:
        remote.send(("error", f"{exc}\n{traceback.format_exc()}"))
        return
    try:
        while True:
            cmd, data = remote.recv()
            if cmd == "step":
                remote.send(("ok", runner.step(data)))
            elif cmd == "reset":
                remote.send(("ok", runner.reset()))
            elif cmd == "call":
                remote.send(("ok", runner.call(data)))
            elif cmd == "steps_per_episode":
                remote.send(("ok", runner.steps_per_episode()))
            elif cmd == "restarts":
                remote.send(("ok", runner.restarts))
            elif cmd == "close":
                runner.close()
                remote.send(("ok", None))
                return
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        runner.close()
    except Exception as exc:  # report instead of dying silently
        try:
            remote.send(("error", f"{exc}\n{traceback.format_exc()}"))
        except Exception:
            pass
        runner.close()


class _Proc:
    """One worker process with its pipe."""

    def __init__(self, ctx: Any, env_kwargs: dict[str, Any], seed: int, worker: int) -> None:
        self.remote, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, env_kwargs, seed, worker), daemon=True)
        self.proc.start()
        child.close()
        self.spaces = self._recv(timeout=300)

    def _recv(self, timeout: float | None = None) -> Any:
        from sim.errors import WulinError

        if timeout is not None and not self.remote.poll(timeout):
            raise WulinError("worker did not answer in time")
        status, payload = self.remote.recv()
        if status != "ok":
            raise WulinError(f"environment worker failed:\n{payload}")
        return payload

    def call(self, cmd: str, data: Any = None) -> Any:
        self.remote.send((cmd, data))
        return self._recv()

    def close(self) -> None:
        try:
            self.remote.send(("close", None))
            self.remote.poll(10) and self.remote.recv()
        except Exception:
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(1)


class SignalVecEnv(VecEnv):
    """All signals of ``n_envs`` environments as one SB3 vectorised env (shared policy).

    Args:
        env_kwargs: Keyword arguments of :class:`~sim.env.WulinParallelEnv` (scenario id,
            config dict, backend); must be picklable.
        n_envs: Number of environments.
        seed: Run seed; episode seeds follow :func:`episode_seed`.
        subprocess: Run each environment in its own process (required for more than one
            libsumo environment); False runs one environment in this process.
        start_method: multiprocessing start method (``spawn``: no forked torch or SUMO state).
        max_process_restarts: Give up after this many dead worker processes in one run.
    """

    def __init__(
        self,
        env_kwargs: dict[str, Any],
        n_envs: int = 1,
        seed: int = 0,
        subprocess: bool = True,
        start_method: str = "spawn",
        max_process_restarts: int = 20,
    ) -> None:
        from sim.errors import WulinError

        if n_envs < 1:
            raise WulinError(f"n_envs must be >= 1, got {n_envs}")
        if not subprocess and n_envs > 1:
            raise WulinError("n_envs > 1 needs subprocess = true (libsumo: one SUMO per process)")
        self.env_kwargs = dict(env_kwargs)
        self.n_workers = n_envs
        self.run_seed = seed
        self.subprocess = subprocess
        self.max_process_restarts = max_process_restarts
        self.process_restarts = 0
        self.episode_log: list[dict[str, Any]] = []
        self._ctx = mp.get_context(start_method) if subprocess else None
        self._procs: list[_Proc] = []
        self._local: _EnvRunner | None = None
        if subprocess:
            self._procs = [_Proc(self._ctx, self.env_kwargs, seed, w) for w in range(n_envs)]
            obs_space, act_space, agents = self._procs[0].spaces
        else:
            self._local = _EnvRunner(self.env_kwargs, seed, 0)
            obs_space, act_space, agents = self._local.spaces()
        self.agents = agents
        self.n_agents = len(agents)
        super().__init__(n_envs * self.n_agents, obs_space, act_space)
        self._actions: np.ndarray | None = None
        self._t_start = time.time()
        self._ep_counter = 0

    # ------------------------------------------------------------------ workers
    def _call(self, w: int, cmd: str, data: Any = None) -> Any:
        if self._local is not None:
            return getattr(self._local, cmd)(*(() if data is None else (data,)))
        return self._procs[w].call(cmd, data)

    def _revive(self, w: int, why: str) -> tuple[np.ndarray, np.ndarray, bool, dict[str, Any]]:
        """A worker process died: start a new one; its slots see a truncated episode."""
        from sim.errors import WulinError

        self.process_restarts += 1
        if self.process_restarts > self.max_process_restarts:
            raise WulinError(f"environment workers died {self.process_restarts} times; last: {why}")
        old = self._procs[w]
        if old.proc.is_alive():
            old.proc.kill()
        old.proc.join(1)
        # continue the seed sequence with a new episode range so seeds are not reused
        self._procs[w] = _Proc(self._ctx, self.env_kwargs, self.run_seed + 7919 * self.process_restarts, w)
        obs = self._procs[w].call("reset")
        shape = (self.n_agents, *self.observation_space.shape)
        info = {"terminal_observation": np.zeros(shape, np.float32),
                "returns": np.zeros(self.n_agents), "length": 0, "elapsed": 0.0,
                "row": {"worker": w, "episode": -1, "seed": -1, "steps": 0, "mean_return": float("nan"),
                        "mean_queue": float("nan"), "wall_s": 0.0, "crashed": f"process died: {why}"}}
        return obs, np.zeros(self.n_agents, np.float32), True, info

    def steps_per_episode(self) -> int:
        """Decisions per episode of one environment."""
        return int(self._call(0, "steps_per_episode"))

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        obs = [self._call(w, "reset") for w in range(self.n_workers)]
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return np.concatenate(obs).astype(np.float32)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        assert self._actions is not None
        A = self.n_agents
        acts = [self._actions[w * A:(w + 1) * A] for w in range(self.n_workers)]
        results: list[Any] = [None] * self.n_workers
        if self._local is not None:
            results[0] = self._local.step(acts[0])
        else:
            for w, p in enumerate(self._procs):  # send to all first: workers step in parallel
                try:
                    p.remote.send(("step", acts[w]))
                except (BrokenPipeError, OSError):
                    results[w] = "dead"
            for w, p in enumerate(self._procs):
                if results[w] == "dead":
                    results[w] = self._revive(w, "pipe closed")
                    continue
                try:
                    results[w] = p._recv()
                except (EOFError, ConnectionResetError, BrokenPipeError, OSError) as exc:
                    results[w] = self._revive(w, type(exc).__name__)
        obs, rews, dones, infos = [], [], [], []
        for o, r, done, info in results:
            obs.append(o)
            rews.append(r)
            dones += [done] * A
            if done:
                row = dict(info["row"])
                row.update(wall_clock=time.time() - self._t_start, index=self._ep_counter)
                self._ep_counter += 1
                self.episode_log.append(row)
                for i in range(A):
                    infos.append({
                        "terminal_observation": info["terminal_observation"][i],
                        "TimeLimit.truncated": True,
                        "episode": {"r": float(info["returns"][i]), "l": int(info["length"]),
                                    "t": round(float(info["elapsed"]), 3)},
                        **({"crashed": row["crashed"]} if row["crashed"] else {}),
                    })
            else:
                infos += [{} for _ in range(A)]
        return (np.concatenate(obs).astype(np.float32), np.concatenate(rews).astype(np.float32),
                np.array(dones, dtype=bool), infos)

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None
        for p in self._procs:
            p.close()
        self._procs = []

    def worker_pids(self) -> list[int]:
        """Process ids of the workers (empty when running in-process)."""
        return [int(p.proc.pid) for p in self._procs if p.proc.pid is not None]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name, None) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str | Callable[..., Any], *method_args: Any,
                   indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        """Call a method of the environments (SB3's ``env_method``), one result per slot.

        Each environment serves ``n_agents`` slots and is called once; its slots share the
        result.  ``method_name`` is a method of :class:`~sim.env.WulinParallelEnv`, or a
        picklable module-level function called as ``fn(env, *method_args, **method_kwargs)``
        in the worker (how ``agents.imitation`` asks each worker's teacher, without this
        module knowing about teachers).
        """
        fn = method_name if callable(method_name) else _env_method(method_name)
        slots = self._get_indices(indices)
        workers = sorted({i // self.n_agents for i in slots})
        res = {w: self._call(w, "call", (fn, method_args, method_kwargs)) for w in workers}
        return [res[i // self.n_agents] for i in slots]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def _get_indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)
