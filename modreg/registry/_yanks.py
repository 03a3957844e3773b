"""A version's yank state on create-only keys: a numbered chain of markers.

Keys cannot be overwritten or deleted, so yanking, yanking again with a new reason and
un-yanking each create the next step's marker (``_keys.yank_step_key``): step 1 is the
historic ``<version>.yank``, later steps are ``<version>.yank.<n>`` or
``<version>.unyank.<n>``. The highest step is the state (``_keys.yanked_in``); its body,
``{"reason": ..., "yanked": TIME}`` or ``{"reason": ..., "unyanked": TIME}``, says why and
when. Two writers racing for one step: one creates it, the other reads again and takes the
next, so no reason is lost. Every step also writes an index entry carrying the step, so
``modreg list`` shows the state without reading markers.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from modreg.errors import ConfigError, IntegrityError, StoreError, UsageError
from modreg.registry._keys import (
    YANK_STEP_MAX,
    parse_record_key,
    record_prefix,
    yank_step,
    yank_step_key,
    yanked_in,
)
from modreg.store import Store

__all__ = ["REASON_LIMIT", "YankState", "change", "copy_steps", "read_state", "version_kinds"]

REASON_LIMIT = 1000  # characters
_BODY_LIMIT = 1 << 16
_TRIES = 64  # steps lost to concurrent writers before giving up


@dataclass(frozen=True)
class YankState:
    """The newest step of a version's yank state: yanked or not, why, and when."""

    yanked: bool
    reason: str
    at: str
    step: int

    def to_json(self) -> dict[str, object]:
        return {"yanked": self.yanked, "reason": self.reason, "at": self.at, "step": self.step}


def version_kinds(store: Store, name: str, version: str) -> set[str]:
    """The kinds (``json``, ``yank``, ``unyank.2``...) of the record-tree keys of a version."""
    found = set()
    for key in store.list(f"{record_prefix(name)}{version}."):
        parsed = parse_record_key(key)
        if parsed is not None and parsed[:2] == (name, version):
            found.add(parsed[2])
    return found


def read_state(store: Store, name: str, version: str) -> YankState | None:
    """The yank state of ``name@version``; None if it was never yanked."""
    step, yanked = yanked_in(version_kinds(store, name, version))
    if step == 0:
        return None
    reason, at = "", ""
    try:
        raw = json.loads(
            store.get(yank_step_key(name, version, step, yanked), limit=_BODY_LIMIT) or b""
        )
    except (IntegrityError, ValueError, RecursionError):
        raw = None  # a damaged body: the key alone still says the state (verify reports it)
    if isinstance(raw, dict):
        reason, at = _text(raw.get("reason")), _text(raw.get("yanked" if yanked else "unyanked"))
    return YankState(yanked, reason, at, step)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def change(store: Store, name: str, version: str, yanked: bool, reason: str) -> YankState | None:
    """Create the next step: yank (or yank again with a new reason) or un-yank.

    Returns:
        The new state, or None when there is nothing to record: a yank of a yanked version
        without a new reason, an un-yank of a version that is not yanked.

    Raises:
        UsageError: the reason is longer than :data:`REASON_LIMIT` characters.
        ConfigError: the version has run out of yank steps.
        StoreError: the next step's key cannot be created (a stray in the way).
    """
    if len(reason) > REASON_LIMIT:
        raise UsageError(f"--reason is {len(reason)} characters long: keep it under {REASON_LIMIT}")
    for _ in range(_TRIES):
        state = read_state(store, name, version)
        if state is None and not yanked:
            return None
        if (
            state is not None
            and state.yanked == yanked
            and (not yanked or reason in ("", state.reason))
        ):
            return None
        step = 1 if state is None else state.step + 1
        if step > YANK_STEP_MAX:
            raise ConfigError(f"{name}@{version} was yanked {YANK_STEP_MAX} times: publish anew")
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        body = {"reason": reason, "yanked" if yanked else "unyanked": at}
        key = yank_step_key(name, version, step, yanked)
        if store.put_if_absent(key, json.dumps(body).encode()):
            return YankState(yanked, reason, at, step)
    # Writers beside us take at most a few steps; a key that never lists is in the way.
    raise StoreError(f"cannot create {key}: something is in the way; run 'modreg verify'")


def copy_steps(source: Store, target: Store, name: str, version: str) -> YankState | None:
    """Copy every yank step of a version the target lacks; the target's new state, if any."""
    copied = False
    for kind in sorted(version_kinds(source, name, version) - {"json"}):
        step = yank_step(kind)
        key = yank_step_key(name, version, *step) if step is not None else ""
        data = source.get(key, limit=_BODY_LIMIT) if key else None
        copied = (data is not None and target.put_if_absent(key, data)) or copied
    return read_state(target, name, version) if copied else None
