"""One side of a drift comparison (reference or current) after inference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audits.datasets import ImageSet
from audits.drift.batch import batch_name
from audits.errors import AuditError
from audits.image_properties import set_properties
from audits.inference import Predictions
from audits.prepare import FrozenCheck


@dataclass
class Side:
    """One data set after inference: its predictions and per-image properties, row-aligned."""

    image_set: ImageSet
    predictions: Predictions
    properties: pd.DataFrame  # path + PROPERTIES, one row per predictions.table row
    freeze: FrozenCheck
    properties_s: float = 0.0

    @property
    def table(self) -> pd.DataFrame:
        return self.predictions.table

    def embeddings(self) -> np.ndarray:
        return np.asarray(self.predictions.embeddings, dtype=np.float32)

    def block(self) -> dict[str, Any]:
        """The data set block of ``drift.json``."""
        table = self.table
        return {
            "path": str(self.image_set.source),
            "name": batch_name(self.image_set.source),
            "root": str(self.image_set.root),
            "kind": self.image_set.kind,
            "fingerprint": self.freeze.fingerprint,
            "n_images": int(len(table)),
            "n_skipped": len(self.predictions.skipped),
            "n_listed": int(len(self.image_set.items)),
            "n_labelled": int((table["label_idx"] >= 0).sum()),
            "frozen": self.freeze.frozen,
        }

    def properties_frame(self, name: str, nn_distance: np.ndarray | None) -> pd.DataFrame:
        """This side's rows of ``properties.parquet``: side, properties, prediction, distance."""
        frame = self.properties.copy()
        frame.insert(0, "side", name)
        table = self.table
        for column in ("label", "pred", "confidence", "correct"):
            frame[column] = table[column].to_numpy()
        frame["nn_distance"] = nn_distance if nn_distance is not None else np.nan
        return frame


def measured_properties(image_set: ImageSet, table: pd.DataFrame) -> pd.DataFrame:
    """The properties of the images in a predictions table, one row per table row, in order.

    An image that inference decoded but the properties pass could not is refused.
    """
    props, _ = set_properties(image_set)
    props = table[["path"]].merge(props, on="path", how="left")
    if props["brightness"].isna().any():
        bad = props.loc[props["brightness"].isna(), "path"].iloc[0]
        raise AuditError(
            f"{image_set.abspath(bad)}: decoded for inference but not for its properties; "
            "re-save the image"
        )
    return props
