"""Pure data about modules (no torch import): manifest, ports, units, versions, equations."""
