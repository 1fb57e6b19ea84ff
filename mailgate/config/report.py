"""[report] in mailgate.toml: what `mailgate report` weighs and groups (docs/report.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from mailgate.config.base import Strict

COMPLEXITIES = ("lower", "medium", "hard", "none")  # "none": tickets without #complexity


class ReportSettings(Strict):
    # SOP 000: each complexity carries the weight the team lead sets, for productivity
    complexity_weights: dict[str, Annotated[float, Field(ge=0, le=1000)]] = {
        "lower": 1.0,
        "medium": 2.0,
        "hard": 3.0,
        "none": 1.0,
    }
    top: Annotated[int, Field(ge=1, le=100)] = 10  # tags, categories, repetitive issues
    # two tickets are alike at this Jaccard similarity of their words (title, first mail)
    cluster_threshold: Annotated[float, Field(ge=0.1, le=0.95)] = 0.6
    cluster_min_size: Annotated[int, Field(ge=2, le=1000)] = 3

    @field_validator("complexity_weights")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(COMPLEXITIES))
        if unknown:
            raise ValueError(
                f"unknown complexity {unknown[0]!r} (one of {', '.join(COMPLEXITIES)})"
            )
        return {**{c: 1.0 for c in COMPLEXITIES}, **v}

    def weights(self) -> dict[str, float]:
        """complexity -> weight, "" for tickets without one (what report/figures.py reads)."""
        return {("" if k == "none" else k): w for k, w in self.complexity_weights.items()}
