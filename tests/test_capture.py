"""modreg.capture / modreg.swap / modreg.check.replace_in on real (small) torch models.

Every model here is plain PyTorch, written as a user would: a Sequential's inner layer, a
block called twice per forward, a part called with keyword arguments, and a graph network
whose edge model sums messages per node with ``index_add``. No mocks: hooks, reservoirs,
the distiller and the swapped forward all run for real.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn
import yaml

import modreg
from modreg.capturing import Capture
from modreg.check._data import load_reference
from modreg.distill import distill_module
from modreg.distill._dataset import load_dataset
from modreg.errors import GraphError, InputError, InterfaceMismatch
from modreg.module import Module

K = 2.0  # N/m**2: the stiffening spring F = K * dx * |dx| the graph network learns


def _snapshot(model: nn.Module) -> tuple[dict[str, torch.Tensor], list[Any]]:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [
        (name, m.training, len(m._forward_hooks), len(m._forward_pre_hooks))
        for name, m in model.named_modules()
    ]
    return state, flags


def _assert_untouched(model: nn.Module, before: tuple[dict[str, torch.Tensor], list[Any]]) -> None:
    state, flags = _snapshot(model)
    assert state.keys() == before[0].keys()
    assert all(torch.equal(state[k], before[0][k]) for k in state)
    assert flags == before[1]


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))


HIDDEN = {"h": {"unit": "V", "shape": [8]}, "y": "m"}


# --- capture: the shapes of models -----------------------------------------------------------


def test_sequential_inner_layer_rows_ranges_and_mode() -> None:
    net = _mlp()
    net.train()
    batches = [torch.randn(50, 2) for _ in range(3)]
    before = _snapshot(net)
    cap = modreg.capture(net, "2", batches, inputs=lambda h: {"h": h}, ports=HIDDEN)
    _assert_untouched(net, before)  # training mode restored, hook removed, weights equal
    table = cap.table()
    assert table["h"].shape == (150, 8) and table["y"].shape == (150,)
    hidden = torch.tanh(net[0](torch.cat(batches))).detach().numpy()
    np.testing.assert_allclose(table["h"], hidden, rtol=1e-6)
    port = cap.interface.inputs["h"]
    assert port.unit == "V" and port.shape == (8,) and port.dtype == "float32"
    assert port.range == pytest.approx((hidden.min(), hidden.max()))
    assert list(cap.interface.outputs) == ["y"] and cap.interface.outputs["y"].range is None
    assert (cap.calls, cap.rows_seen, len(cap)) == (3, 150, 150)


class Twice(nn.Module):
    """One block applied twice per forward: both calls are rows."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(torch.relu(self.block(x)))


def test_part_called_twice_per_forward_records_both_calls() -> None:
    torch.manual_seed(0)
    model = Twice()
    x = torch.randn(20, 3)
    cap = modreg.capture(
        model,
        "block",
        [x, x[:5]],
        inputs=lambda v: {"v": v},
        ports={"v": {"unit": "m", "shape": [3]}, "w": {"unit": "m", "shape": [3]}},
    )
    assert (cap.calls, cap.rows_seen) == (4, 50)
    first = model.block(x).detach().numpy()
    np.testing.assert_allclose(cap.table()["w"][:20], first, rtol=1e-6)


class Scaled(nn.Module):
    def forward(self, x: torch.Tensor, *, gain: torch.Tensor) -> torch.Tensor:
        return gain * x**2


class KeywordModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.law = Scaled()

    def forward(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        return self.law(x, gain=gain) + 1.0


def test_keyword_arguments_and_dict_batches() -> None:
    x, gain = torch.rand(40) + 0.5, torch.rand(40) + 1.0
    cap = modreg.capture(
        KeywordModel(),
        "law",
        [{"x": x, "gain": gain}],
        inputs=lambda x, gain: {"x": x, "g": gain},
        ports={"x": "m", "g": "N/m**2", "F": "N"},
        call=lambda x, g: {"x": x, "gain": g},
    )
    table = cap.table()
    np.testing.assert_allclose(table["F"], (gain * x**2).numpy(), rtol=1e-6)
    fresh = {"x": np.array([1.0, 2.0]), "g": np.array([3.0, 0.5])}
    np.testing.assert_allclose(cap.query(fresh)["F"], [3.0, 2.0], rtol=1e-6)


def test_reservoir_bounds_rows_and_is_seeded() -> None:
    net = _mlp()
    batches = [torch.randn(100, 2) for _ in range(10)]

    def run(seed: int) -> Capture:
        return modreg.capture(
            net, "2", batches, inputs=lambda h: {"h": h}, ports=HIDDEN, max_rows=64, seed=seed
        )

    a, b, c = run(0), run(0), run(1)
    assert len(a) == 64 and a.rows_seen == 1000
    np.testing.assert_array_equal(a.table()["h"], b.table()["h"])
    assert not np.array_equal(a.table()["h"], c.table()["h"])
    every = torch.tanh(net[0](torch.cat(batches))).detach().numpy()
    distance = np.abs(a.table()["h"][:, None, :] - every[None, :, :]).max(axis=2)
    assert (distance.min(axis=1) < 1e-5).all()  # every kept row is a row seen
    source = distance.argmin(axis=1)
    assert (source >= 500).any()  # rows seen long after the reservoir filled still get in


def test_query_needs_call_and_save_reads_back(tmp_path: Path) -> None:
    net = _mlp()
    cap = modreg.capture(net, "2", [torch.randn(30, 2)], inputs=lambda h: {"h": h}, ports=HIDDEN)
    with pytest.raises(InputError, match="call="):
        cap.query({"h": np.zeros((2, 8))})
    ports = dict(cap.interface.inputs) | dict(cap.interface.outputs)
    parquet = all(importlib.util.find_spec(p) for p in ("pandas", "pyarrow"))
    for name in ("rows.csv", "rows.parquet")[: 2 if parquet else 1]:
        path = cap.save(tmp_path / name, units=tmp_path / "units.yaml")
        back = load_reference(path, ports)
        for port, values in cap.table().items():
            np.testing.assert_array_equal(back[port], values)
    dataset = load_dataset(tmp_path / "rows.csv", "y", tmp_path / "units.yaml")
    assert dataset.inputs["h"].shape == (8,) and dataset.outputs["y"].unit == "m"
    assert yaml.safe_load((tmp_path / "units.yaml").read_text()) == {"h": "V", "y": "m"}


# --- bad input: one clear error each, the model untouched ------------------------------------


class EdgeLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.cat([a, b], dim=1))


class Pairs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.edge_model = EdgeLinear()
        self.unused = nn.Linear(2, 2)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.edge_model(a, b)


def _pair_batches(bad: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
    a = torch.randn(10, 2)
    if bad:
        a[3, 0] = float("nan")
    return [(a, torch.randn(10, 2))]


EDGE_PORTS = {"dx": {"unit": "m", "shape": [2]}, "F": {"unit": "N", "shape": [2]}}

BAD: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("unknown name", {"name": "edge_modle"}, GraphError, "did you mean 'edge_model'"),
    (
        "mapping shape",
        {"inputs": lambda a, b: {"dx": (b - a)[:, :1]}},
        InterfaceMismatch,
        r"shape \[10, 1\] but is declared with shape \[2\]",
    ),
    (
        "output shape",
        {"ports": {"dx": {"unit": "m", "shape": [2]}, "F": {"unit": "N", "shape": [3]}}},
        InterfaceMismatch,
        "not 10 row",
    ),
    ("never called", {"name": "unused"}, InputError, "never called"),
    ("non-finite", {"batches": _pair_batches(bad=True)}, InputError, "NaN or Inf"),
    ("undeclared port", {"inputs": lambda a, b: {"r": a}}, InterfaceMismatch, "does not declare"),
    ("mapping raises", {"inputs": lambda a: {"dx": a}}, InterfaceMismatch, "TypeError"),
]


@pytest.mark.parametrize(("case", "change", "error", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_clear_error_and_the_model_is_untouched(
    case: str, change: dict[str, Any], error: type[Exception], match: str
) -> None:
    torch.manual_seed(0)
    model = Pairs()
    model.train()
    before = _snapshot(model)
    arguments: dict[str, Any] = {
        "name": "edge_model",
        "batches": _pair_batches(),
        "inputs": lambda a, b: {"dx": b - a},
        "ports": EDGE_PORTS,
    } | change
    name, batches = arguments.pop("name"), arguments.pop("batches")
    with pytest.raises(error, match=match) as caught:
        modreg.capture(model, name, batches, **arguments)
    assert "\n" not in str(caught.value)
    _assert_untouched(model, before)


# --- distil, swap and check ------------------------------------------------------------------


class Law(nn.Module):
    """An exact force law as a torch part: distillation must give it back."""

    def forward(self, x_i: torch.Tensor, x_j: torch.Tensor) -> torch.Tensor:
        dx = x_j - x_i
        return K * dx * dx.norm(dim=-1, keepdim=True)


class Pairwise(nn.Module):
    def __init__(self, edge: nn.Module) -> None:
        super().__init__()
        self.edge_model = edge

    def forward(self, x_i: torch.Tensor, x_j: torch.Tensor) -> torch.Tensor:
        return self.edge_model(x_i, x_j)


def _pairs(count: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(4):
        x_i = torch.rand(count, 2, generator=generator) * 2 - 1
        batches.append((x_i, torch.rand(count, 2, generator=generator) * 2 - 1))
    return batches


def _edge_capture(model: nn.Module, batches: list[Any], **extra: Any) -> Capture:
    return modreg.capture(
        model,
        "edge_model",
        batches,
        inputs=lambda x_i, x_j: {"dx": x_j - x_i},
        ports=EDGE_PORTS,
        **extra,
    )


@pytest.mark.parametrize("queried", [True, False], ids=["teacher", "data"])
def test_distil_an_exact_part_gives_its_law_and_interface(tmp_path: Path, queried: bool) -> None:
    call = (lambda dx: (torch.zeros_like(dx), dx)) if queried else None
    cap = _edge_capture(Pairwise(Law()), _pairs(300, seed=1), call=call)
    report = distill_module(cap, out=tmp_path / "law", time_budget=20, seed=0, samples=1000)
    assert report.outputs["F"].expression == "2*dx*norm(dx)"
    manifest = report.module.manifest
    assert manifest.kind == "equation"
    assert manifest.inputs == dict(cap.interface.inputs)  # names, units, shapes, ranges
    assert manifest.outputs == dict(cap.interface.outputs)
    assert manifest.provenance["captured_part"] == "Pairwise.edge_model"
    assert manifest.provenance["capture_mode"] == ("queried" if queried else "data")


class EdgeMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2, 32), nn.SiLU(), nn.Linear(32, 32), nn.SiLU(), nn.Linear(32, 2)
        )

    def forward(self, x_i: torch.Tensor, x_j: torch.Tensor) -> torch.Tensor:
        return self.mlp(x_j - x_i)


class GraphNet(nn.Module):
    """Messages of every ordered pair of bodies, summed per receiving body (index_add)."""

    def __init__(self, bodies: int) -> None:
        super().__init__()
        self.edge_model = EdgeMLP()
        pairs = [(i, j) for i in range(bodies) for j in range(bodies) if i != j]
        self.register_buffer("receivers", torch.tensor([i for i, _ in pairs]))
        self.register_buffer("senders", torch.tensor([j for _, j in pairs]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, bodies, _ = x.shape
        flat = x.reshape(batch * bodies, 2)
        offset = (torch.arange(batch) * bodies).repeat_interleave(len(self.senders))
        receivers = self.receivers.repeat(batch) + offset
        senders = self.senders.repeat(batch) + offset
        messages = self.edge_model(flat[receivers], flat[senders])
        return torch.zeros_like(flat).index_add(0, receivers, messages).reshape(x.shape)


def _accelerations(x: torch.Tensor) -> torch.Tensor:
    dx = x[:, None, :, :] - x[:, :, None, :]  # [batch, i, j] = x_j - x_i
    return (K * dx * dx.norm(dim=-1, keepdim=True)).sum(dim=2)


@pytest.fixture(scope="module")
def graph_net() -> GraphNet:
    torch.manual_seed(0)
    model = GraphNet(4)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=1e-2, total_steps=500)
    for _ in range(500):
        x = torch.rand(128, 4, 2) * 2 - 1
        loss = ((model(x) - _accelerations(x)) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return model


def _systems(count: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(32, 4, 2, generator=generator) * 2 - 1 for _ in range(count)]


def _equation(tmp_path: Path, scale: float) -> Module:
    folder = tmp_path / f"law-{scale}"
    folder.mkdir()
    manifest = {
        "name": "test/spring",
        "version": "1.0.0",
        "kind": "equation",
        "inputs": {"dx": {"unit": "m", "shape": [2]}},
        "outputs": {"F": {"unit": "N", "shape": [2]}},
        "equation": {"F": "k*dx*norm(dx)"},
        "constants": {"k": {"value": scale, "unit": "N/m**2"}},
    }
    (folder / "modreg.yaml").write_text(yaml.safe_dump(manifest))
    return Module.from_dir(folder)


@pytest.mark.slow
def test_graph_network_edge_model_distils_to_its_law(tmp_path: Path, graph_net: GraphNet) -> None:
    before = _snapshot(graph_net)
    cap = _edge_capture(graph_net, _systems(10, seed=1), call=lambda dx: (dx * 0, dx))
    assert cap.calls == 10 and len(cap) == 10 * 32 * 12
    # The user's validation error of the edge model, recorded as a network module records it:
    # distillation settles to it (without it, 1 % of the output's RMS is assumed).
    table = cap.table()
    law = K * table["dx"] * np.linalg.norm(table["dx"], axis=1, keepdims=True)
    cap.metrics = {"rmse_F": float(np.sqrt(np.mean((table["F"] - law) ** 2)))}
    report = distill_module(cap, out=tmp_path / "force", time_budget=20, seed=0, samples=2000)
    assert report.outputs["F"].expression == "2*dx*norm(dx)"

    swapped = modreg.swap(graph_net, "edge_model", report.module, cap)
    _assert_untouched(graph_net, before)
    assert isinstance(graph_net.edge_model, EdgeMLP)  # the original keeps its network
    [record] = swapped.modreg_swaps
    assert (record.part, record.module, record.digest) == (
        "edge_model",
        report.module.name,
        report.module.digest,
    )
    test = _systems(4, seed=2)
    with torch.no_grad():
        np.testing.assert_allclose(swapped(test[0]), _accelerations(test[0]), atol=1e-4)
    passed = modreg.check.replace_in(graph_net, swapped, test, tolerance="5%", capture=cap)
    assert passed.ok, passed.summary()
    assert [r.check for r in passed.results] == ["replace_in", "replace_in:part"]
    assert passed.results[0].data["ports"][0]["port"] == "out"


def test_swap_keeps_layout_dtype_and_replace_in_fails_a_wrong_law(tmp_path: Path) -> None:
    model = Pairwise(Law()).double()
    batches = [tuple(t.double() for t in pair) for pair in _pairs(50, seed=3)]
    cap = _edge_capture(model, batches)
    right = modreg.swap(model, "edge_model", _equation(tmp_path, K), cap)
    wrong = modreg.swap(model, "edge_model", _equation(tmp_path, 1.5), cap)
    out = right(*batches[0])
    assert out.shape == (50, 2) and out.dtype == torch.float64
    assert modreg.check.replace_in(model, right, batches, tolerance="1%").ok
    report = modreg.check.replace_in(model, wrong, batches, tolerance="1%", capture=cap)
    assert [r.status for r in report.results] == ["fail", "fail"]
    assert "beyond tolerance 1%" in report.results[0].message
    assert "captured rows" in report.results[1].message
    assert report.to_junit().count(b"<failure") == 2


def test_swap_refuses_a_module_that_cannot_stand_in(tmp_path: Path) -> None:
    cap = _edge_capture(Pairwise(Law()), _pairs(20, seed=4))
    folder = tmp_path / "scalar"
    folder.mkdir()
    (folder / "modreg.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "test/scalar",
                "version": "1.0.0",
                "kind": "equation",
                "inputs": {"dx": {"unit": "m", "shape": [2]}},
                "outputs": {"F": {"unit": "N"}},
                "equation": {"F": "c*norm(dx)"},
                "constants": {"c": {"value": 1.0, "unit": "N/m"}},
            }
        )
    )
    with pytest.raises(InterfaceMismatch, match="cannot stand in"):
        modreg.swap(Pairwise(Law()), "edge_model", Module.from_dir(folder), cap)
    with pytest.raises(GraphError, match="edge_model"):
        modreg.swap(Pairwise(Law()), "edge", _equation(tmp_path, K), cap)


def test_swap_with_a_mapping_alone(tmp_path: Path) -> None:
    model = Pairwise(Law())
    inputs: Callable[..., dict[str, torch.Tensor]] = lambda x_i, x_j: {"dx": x_j - x_i}  # noqa: E731
    swapped = modreg.swap(model, "edge_model", _equation(tmp_path, K), inputs)
    x_i, x_j = _pairs(8, seed=5)[0]
    with torch.no_grad():
        np.testing.assert_allclose(swapped(x_i, x_j), model(x_i, x_j), rtol=1e-5)


@pytest.mark.parametrize("shape", [(), (3,), (2, 2)])
def test_saved_columns_follow_the_reference_data_convention(shape: tuple[int, ...]) -> None:
    from modreg.capturing._table import column_names
    from modreg.check._data import column_names as reference

    assert column_names("v", shape) == reference("v", shape)


class LawAndEnergy(nn.Module):
    """A part whose output is a tuple: outputs= maps it, call_outputs= puts it back."""

    def forward(self, x_i: torch.Tensor, x_j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dx = x_j - x_i
        r = dx.norm(dim=-1)
        return K * dx * r[:, None], K * r**3 / 3


def test_mapped_outputs_swap_back_through_call_outputs(tmp_path: Path) -> None:
    model = Pairwise(LawAndEnergy())
    batches = _pairs(30, seed=6)
    ports = EDGE_PORTS | {"U": "J"}
    cap = modreg.capture(
        model,
        "edge_model",
        batches,
        inputs=lambda x_i, x_j: {"dx": x_j - x_i},
        ports=ports,
        outputs=lambda out: {"F": out[0], "U": out[1]},
    )
    assert list(cap.interface.outputs) == ["F", "U"] and cap.table()["U"].shape == (120,)
    folder = tmp_path / "both"
    folder.mkdir()
    manifest = {
        "name": "test/spring-energy",
        "version": "1.0.0",
        "kind": "equation",
        "inputs": {"dx": {"unit": "m", "shape": [2]}},
        "outputs": {"F": {"unit": "N", "shape": [2]}, "U": {"unit": "J"}},
        "equation": {"F": "k*dx*norm(dx)", "U": "k*norm(dx)**3/3"},
        "constants": {"k": {"value": K, "unit": "N/m**2"}},
    }
    (folder / "modreg.yaml").write_text(yaml.safe_dump(manifest))
    module = Module.from_dir(folder)
    with pytest.raises(InterfaceMismatch, match="call_outputs="):
        modreg.swap(model, "edge_model", module, cap)
    swapped = modreg.swap(model, "edge_model", module, cap, call_outputs=lambda p: (p["F"], p["U"]))
    force, energy = swapped(*batches[0])
    expected = model(*batches[0])
    torch.testing.assert_close(force, expected[0])
    torch.testing.assert_close(energy, expected[1])
    assert modreg.check.replace_in(model, swapped, batches, capture=cap).ok


def test_capture_stays_the_function_after_its_package_is_imported() -> None:
    # A sub-package named modreg/capture/ would shadow modreg.capture once imported.
    code = (
        "import modreg.capturing, modreg.check.whole, modreg\n"
        "assert callable(modreg.capture) and callable(modreg.swap), modreg.capture"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_swapped_model_exports_where_the_users_model_does(tmp_path: Path) -> None:
    model = Pairwise(Law())
    batches = _pairs(40, seed=8)
    swapped = modreg.swap(
        model, "edge_model", _equation(tmp_path, K), _edge_capture(model, batches)
    )
    args = batches[0]
    with torch.no_grad():
        want = swapped(*args)
        exported = torch.export.export(swapped, args)
        torch.testing.assert_close(exported.module()(*args), want)


def test_swaps_are_saved_and_made_again_from_the_same_bytes(tmp_path: Path) -> None:
    from modreg.capturing import reapply_swaps, save_swaps
    from modreg.errors import IntegrityError
    from modreg.registry import Registry

    registry = Registry(tmp_path / "registry")
    law = registry.pull(registry.publish(_equation(tmp_path, K).path).ref)
    model = Pairwise(Law())
    batches = _pairs(40, seed=9)
    cap = _edge_capture(model, batches)
    saved = save_swaps(modreg.swap(model, "edge_model", law, cap), tmp_path)
    again = reapply_swaps(Pairwise(Law()), saved, {"edge_model": cap}, registry=registry)
    assert [(r.part, r.digest) for r in again.modreg_swaps] == [("edge_model", law.digest)]
    with torch.no_grad():
        torch.testing.assert_close(again(*batches[0]), model(*batches[0]))
    text = saved.read_text().replace(law.digest, "sha256:" + "0" * 64)
    saved.write_text(text)
    with pytest.raises(IntegrityError, match="the swap was made with sha256:0000"):
        reapply_swaps(Pairwise(Law()), saved, {"edge_model": cap}, registry=registry)
