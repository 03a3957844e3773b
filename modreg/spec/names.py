"""Module names, versions and references (``name@spec``), validated with ``packaging``.

Example:
    >>> ModuleRef.parse("physics/gravity@>=1,<2").name
    'physics/gravity'
    >>> str(parse_version("1.2.0"))
    '1.2.0'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion as _PackagingInvalidVersion
from packaging.version import Version

from modreg.errors import InvalidName, InvalidVersion

__all__ = ["LATEST", "ModuleRef", "VersionSpec", "parse_name", "parse_spec", "parse_version"]

MAX_NAME_LENGTH = 128
_SEGMENT = r"[a-z0-9][a-z0-9._-]*"
_NAME_RE = re.compile(rf"(?:{_SEGMENT}/)?{_SEGMENT}")
# Strict text form before packaging normalises it: digits, dots, an optional pre/post/dev tag.
_VERSION_RE = re.compile(
    r"[0-9]+\.[0-9]+\.[0-9]+(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?"
)
LATEST = "latest"


def parse_name(text: str) -> str:
    """Return ``text`` if it is a valid module name, else raise :class:`InvalidName`.

    A name is lowercase ``[a-z0-9][a-z0-9._-]*`` with at most one ``namespace/`` prefix.
    """
    if not isinstance(text, str) or not text:
        raise InvalidName("module name is empty: give a name like 'physics/gravity'")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidName(
            f"module name {text[:40]!r}... is longer than {MAX_NAME_LENGTH} characters"
        )
    if ".." in text:
        raise InvalidName(
            f"module name {text!r} contains '..': names cannot walk out of the registry"
        )
    if not _NAME_RE.fullmatch(text):
        fix = text.lower().strip("/ ")
        hint = f" (did you mean {fix!r}?)" if fix != text and _NAME_RE.fullmatch(fix) else ""
        raise InvalidName(
            f"invalid module name {text!r}: use lowercase [a-z0-9][a-z0-9._-]* with at most one "
            f"'namespace/' prefix{hint}"
        )
    return text


def parse_version(text: str) -> Version:
    """Parse a published version: ``MAJOR.MINOR.PATCH`` (optionally a pre/post/dev tag).

    Raises:
        InvalidVersion: whitespace, local labels (``+x``), ``latest``, or not a version.
    """
    if not isinstance(text, str) or not _VERSION_RE.fullmatch(text):
        shown = text if isinstance(text, str) else type(text).__name__
        if isinstance(text, str) and "+" in text:
            why = "local labels ('+...') are not allowed in published versions"
        elif text == LATEST:
            why = "'latest' is a version spec for pull, not a version to publish"
        else:
            why = "expected MAJOR.MINOR.PATCH such as 1.0.0"
        raise InvalidVersion(f"invalid version {shown!r}: {why}")
    try:
        return Version(text)
    except _PackagingInvalidVersion as exc:  # pragma: no cover - the regex is stricter
        raise InvalidVersion(f"invalid version {text!r}: expected MAJOR.MINOR.PATCH") from exc


@dataclass(frozen=True)
class VersionSpec:
    """What a reference asks for: an exact pin, a PEP 440 range, or the latest release."""

    text: str
    pin: Version | None = None
    specifier: SpecifierSet | None = None

    @property
    def is_latest(self) -> bool:
        return self.pin is None and self.specifier is None

    def admits(self, version: Version, *, yanked: bool) -> bool:
        """Whether ``version`` satisfies this spec (yanked versions only by exact pin)."""
        if self.pin is not None:
            return version == self.pin
        if yanked:
            return False
        if self.specifier is None:
            return not version.is_prerelease
        return self.specifier.contains(version, prereleases=None)

    def __str__(self) -> str:
        return self.text


def parse_spec(text: str) -> VersionSpec:
    """Parse a version spec: ``1.2.3``, ``==1.2.3``, ``>=1.2,<2``, ``~=1.2`` or ``latest``.

    Raises:
        InvalidVersion: the text is neither a version nor a PEP 440 specifier set.
    """
    text = text if isinstance(text, str) else ""
    if text in ("", LATEST):
        return VersionSpec(LATEST)
    if text != text.strip() or any(ch.isspace() for ch in text.replace(", ", ",")):
        raise InvalidVersion(f"invalid version spec {text!r}: remove the whitespace")
    if _VERSION_RE.fullmatch(text):
        return VersionSpec(text, pin=Version(text))
    if text.startswith("==") and _VERSION_RE.fullmatch(text[2:]):
        return VersionSpec(text, pin=Version(text[2:]))
    try:
        specifier = SpecifierSet(text)
    except InvalidSpecifier as exc:
        raise InvalidVersion(
            f"invalid version spec {text!r}: use 1.2.3, a PEP 440 range like '>=1.2,<2' "
            "or '~=1.2', or 'latest'"
        ) from exc
    if any("+" in s.version for s in specifier):
        raise InvalidVersion(
            f"invalid version spec {text!r}: local labels ('+...') are not allowed"
        )
    return VersionSpec(text, specifier=specifier)


@dataclass(frozen=True)
class ModuleRef:
    """A reference to stored module versions: ``name`` plus a :class:`VersionSpec`."""

    name: str
    spec: VersionSpec

    @classmethod
    def parse(cls, text: str) -> ModuleRef:
        """Parse ``name``, ``name@spec``; a missing spec means ``latest``.

        Raises:
            InvalidName: the name part is invalid.
            InvalidVersion: the spec part is invalid.
        """
        name, sep, spec = text.partition("@")
        if sep and not spec:
            raise InvalidVersion(f"module reference {text!r} ends with '@': add a version or range")
        return cls(parse_name(name), parse_spec(spec))

    def __str__(self) -> str:
        return self.name if self.spec.is_latest else f"{self.name}@{self.spec}"
