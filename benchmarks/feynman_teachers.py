"""Network-teacher benchmark: distil trained MLPs of the Feynman laws back into the laws.

For each equation of the Feynman table (and the bonus table): train a catalogue MLP teacher
on samples of the true law (seeded; cached under ``benchmarks/.cache/``), record its own
error against the truth in its manifest (``rmse_<output>``, as a trainer records its
validation error), publish it into a temporary registry, run ``modreg distill`` on it
through the CLI, and score the equation against the *truth* on fresh points:

- EXACT: the true law with its constants: median relative error <= 1e-6 and not bloated
  (operation count at most 2x the truth's + 4);
- LAW: the true form (refitting its numbers to the truth makes it exact: median relative
  error <= 1e-6; not bloated), and its error against the truth below the teacher's own.

Each line of the results shows the teacher's own relative RMSE against the truth.

Usage: python benchmarks/feynman_teachers.py [--only I.6.2,II.6.11] [--limit N]
       [--budget 60] [--bonus/--no-bonus] [--hidden 64,64] [--steps 3000] [--lbfgs 2000]
       [--jobs 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import sympy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feynman import Equation, _read_units, _sample, _truth, _values, select_equations

CACHE = Path(__file__).resolve().parent / ".cache" / "feynman_teachers"
N_TRAIN, N_TEST = 4000, 2000
_DIMS = {"m": "m", "s": "s", "kg": "kg", "T": "K", "V": "V"}


def _unit(exponents: dict[str, float] | None) -> str:
    if not exponents:
        return "dimensionless"
    parts = [f"{_DIMS[d]}**{e:g}" for d, e in exponents.items() if e]
    return "*".join(parts) or "dimensionless"


def _ports(eq: Equation, units: dict[str, dict[str, float]]) -> tuple[dict[str, Any], str]:
    inputs = {
        name: {"unit": _unit(units.get(name)), "range": [lo, hi]} for name, lo, hi in eq.variables
    }
    return inputs, _unit(units.get(eq.output))


def _key(eq: Equation, hidden: tuple[int, ...], steps: int, lbfgs: int) -> str:
    recipe = [hidden, steps, N_TRAIN] + ([lbfgs] if lbfgs else [])  # 0: the old teachers' keys
    text = json.dumps([eq.formula, eq.variables, *recipe])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def train_teacher(
    eq: Equation,
    units: dict[str, dict[str, float]],
    hidden: tuple[int, ...],
    steps: int,
    lbfgs: int = 0,
) -> tuple[Path, float]:
    """The cached teacher module directory and its relative RMSE against the truth.

    Adam (cosine-annealed) for ``steps``, then up to ``lbfgs`` full-batch L-BFGS iterations,
    the usual finish for a small smooth regression (about ten times lower error).
    """
    out_name = "y_out" if eq.output in {n for n, _, _ in eq.variables} else eq.output
    folder = CACHE / f"{eq.name}-{_key(eq, hidden, steps, lbfgs)}"
    meta = folder / "teacher.json"
    if meta.exists():
        return folder / "module", float(json.loads(meta.read_text())["rel_rmse"])
    import torch

    import modreg

    truth, symbols = _truth(eq)
    x = _sample(eq, N_TRAIN, seed=0)
    y = _values(truth, symbols, x)
    inputs, out_unit = _ports(eq, units)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    block = modreg.Block.mlp(
        inputs, {out_name: out_unit}, hidden=hidden, activation="tanh", normalize=True
    )
    block.check_inputs = False
    xs = {n: torch.tensor(x[:, i], dtype=torch.float32)[:, None].squeeze(1)
          for i, (n, _, _) in enumerate(eq.variables)}  # fmt: skip
    yt = torch.tensor(y, dtype=torch.float32)
    block.fit_normalization(None, {out_name: yt})
    opt = torch.optim.Adam(block.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        loss = ((block(xs)[out_name] - yt) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    if lbfgs:
        scale = float(yt.std()) or 1.0
        finish = torch.optim.LBFGS(
            block.parameters(), max_iter=lbfgs, history_size=50, line_search_fn="strong_wolfe",
            tolerance_grad=0.0, tolerance_change=0.0,
        )  # fmt: skip

        def closure() -> Any:  # the loss tensor
            finish.zero_grad()
            loss = (((block(xs)[out_name] - yt) / scale) ** 2).mean()
            loss.backward()
            return loss

        finish.step(closure)  # type: ignore[no-untyped-call]
    xv = _sample(eq, N_TEST, seed=777)
    yv = _values(truth, symbols, xv)
    with torch.no_grad():
        qs = {n: torch.tensor(xv[:, i], dtype=torch.float32)
              for i, (n, _, _) in enumerate(eq.variables)}  # fmt: skip
        pred = block(qs)[out_name].double().numpy()
    rmse = float(np.sqrt(np.mean((pred - yv) ** 2)))
    rel = rmse / float(np.sqrt(np.mean(yv**2)))
    name = "feynman/" + eq.name.lower().replace("_", "-")
    block.save(folder / "module", name=name, version="1.0.0", metrics={f"rmse_{out_name}": rmse})
    meta.write_text(json.dumps({"rel_rmse": rel, "rmse": rmse, "output": out_name}))
    return folder / "module", rel


def _distill(module: Path, budget: float, workdir: Path) -> dict[str, Any]:
    import modreg

    registry = workdir / "registry"
    published = modreg.Registry(registry).publish(module)
    out = workdir / "out"
    cmd = [sys.executable, "-m", "modreg", "distill", published.ref, "-r", str(registry),
           "--time-budget", str(budget), "--out", str(out), "--json"]  # fmt: skip
    env = os.environ | {"MODREG_HOME": str(workdir / "home")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=budget * 3 + 60)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    result: dict[str, Any] = json.loads(done.stdout)
    result["stderr"] = done.stderr
    return result


def judge(expression: str, eq: Equation, teacher_rel: float) -> tuple[bool, bool, float]:
    """(EXACT, LAW, relative RMSE against the truth) of a distilled expression."""
    truth, symbols = _truth(eq)
    table: dict[str, Any] = {s.name: s for s in symbols} | {"pi": sympy.pi}
    found = sympy.parse_expr(expression, local_dict=table)  # trusted: our own CLI's output
    x = _sample(eq, N_TEST, seed=12345)
    yt, yf = _values(truth, symbols, x), _values(found, symbols, x)
    if not np.all(np.isfinite(yf)):
        return False, False, float("inf")
    rel = np.abs(yf - yt) / np.maximum(np.abs(yt), 1e-12)
    rel_rmse = float(np.sqrt(np.mean((yf - yt) ** 2)) / np.sqrt(np.mean(yt**2)))
    bloated = sympy.count_ops(found) > 2 * sympy.count_ops(truth) + 4
    exact = float(np.median(rel)) <= 1e-6 and not bloated
    law = not bloated and rel_rmse < teacher_rel and _true_form(found, symbols, x, yt)
    return exact, exact or law, rel_rmse


def _true_form(
    found: sympy.Expr, symbols: list[sympy.Symbol], x: np.ndarray, yt: np.ndarray
) -> bool:
    """Whether refitting the expression's numbers to the truth makes it exact."""
    from scipy.optimize import least_squares

    numbers = sorted(
        (n for n in found.atoms(sympy.Number) if not (n.is_Integer and abs(n) <= 4)), key=str
    )
    params = sympy.symbols(f"p0:{len(numbers)}")
    template = found.xreplace(dict(zip(numbers, params, strict=True)))
    fn = sympy.lambdify([*symbols, *params], template, modules="numpy")
    scale = np.maximum(np.abs(yt), 1e-12)

    def residual(p: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = np.broadcast_to(np.asarray(fn(*x.T, *p), dtype=float), yt.shape)
        scaled: np.ndarray = np.nan_to_num((out - yt) / scale, nan=1e6, posinf=1e6, neginf=-1e6)
        return scaled

    start = np.array([float(n) for n in numbers])
    if start.size == 0:
        return bool(np.median(np.abs(residual(start))) <= 1e-6)
    fit = least_squares(residual, start, xtol=1e-14, ftol=1e-14, max_nfev=2000)
    return bool(np.median(np.abs(residual(fit.x))) <= 1e-6)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated equation names")
    p.add_argument("--limit", type=int, default=0, help="run only the first N equations")
    p.add_argument("--budget", type=float, default=60.0, help="seconds per equation")
    p.add_argument("--bonus", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--hidden", default="64,64,64", help="teacher MLP widths")
    p.add_argument("--steps", type=int, default=3000, help="teacher training steps (Adam)")
    p.add_argument("--lbfgs", type=int, default=2000, help="L-BFGS iterations after Adam")
    p.add_argument("--jobs", type=int, default=1, help="train missing teachers in N processes")
    args = p.parse_args(argv)
    eqs = select_equations(args.bonus, args.only, args.limit)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    units = _read_units()
    recipe = f"{args.steps} Adam steps + {args.lbfgs} L-BFGS iterations"
    print(f"# {len(eqs)} teachers ({hidden} tanh, {recipe}), budget {args.budget:g}s")
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=spawn) as pool:
            jobs = [pool.submit(train_teacher, eq, units, hidden, args.steps, args.lbfgs)
                    for eq in eqs]  # fmt: skip
            for job in jobs:
                job.result()
    counts = {"exact": 0, "law": 0}
    for eq in eqs:
        module, teacher_rel = train_teacher(eq, units, hidden, args.steps, args.lbfgs)
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            result = _distill(module, args.budget, Path(tmp))
        seconds = time.monotonic() - started
        if "error" in result:
            print(f"{eq.name:<14} ERROR {seconds:6.1f}s  teacher {teacher_rel:.1e}  "
              f"{result['error']}")  # fmt: skip
            continue
        exact, law, rel = judge(result["expression"], eq, teacher_rel)
        counts["exact"] += exact
        counts["law"] += law
        mark = "EXACT" if exact else "LAW  " if law else "miss "
        print(f"{eq.name:<14} {mark} {seconds:6.1f}s  teacher {teacher_rel:.1e}  "
              f"found {rel:.1e}  {result['expression']}", flush=True)  # fmt: skip
    print(f"# EXACT {counts['exact']}/{len(eqs)}, LAW {counts['law']}/{len(eqs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
