"""Where policy packs are found: `rules/` of the installation, or a file named by path. A leaf,
so that reading gateway.toml can check `[policy] pack` without loading packs."""

from __future__ import annotations

from pathlib import Path

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


def pack_path(name_or_path: str, rules_dir: Path = RULES_DIR) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or "/" in name_or_path:
        return candidate
    return rules_dir / f"{name_or_path}.toml"


def available_packs(rules_dir: Path = RULES_DIR) -> list[str]:
    return sorted(p.stem for p in rules_dir.glob("*.toml"))
