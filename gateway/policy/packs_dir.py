"""Where policy packs are found: `rules/` of the installation, or a file named by path. A leaf,
so that reading gateway.toml can check `[policy] pack` without loading packs."""

from __future__ import annotations

from pathlib import Path

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


def names_a_file(name_or_path: str) -> bool:
    """`ours.toml` or `packs/ours` is a pack file; `teens-in-ai` a pack in rules/."""
    return Path(name_or_path).suffix == ".toml" or "/" in name_or_path


def pack_path(name_or_path: str, rules_dir: Path = RULES_DIR) -> Path:
    if names_a_file(name_or_path):
        return Path(name_or_path)
    return rules_dir / f"{name_or_path}.toml"


def available_packs(rules_dir: Path = RULES_DIR) -> list[str]:
    return sorted(p.stem for p in rules_dir.glob("*.toml"))
