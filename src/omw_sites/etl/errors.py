"""The one error type of the ETL: names the file, layer, record and the rule broken."""

from __future__ import annotations

from pathlib import Path


class IngestError(ValueError):
    """Input data that cannot be accepted.

    The message always names the file, and the layer, record and rule where they apply,
    so that the person who produced the data can fix it.
    """

    def __init__(
        self,
        file: str | Path,
        problem: str,
        *,
        layer: str | None = None,
        record: str | None = None,
        rule: str | None = None,
    ) -> None:
        self.file = str(file)
        self.layer = layer
        self.record = record
        self.rule = rule
        self.problem = problem
        where = self.file
        if layer:
            where += f" (layer {layer!r})"
        if record:
            where += f", record {record}"
        text = f"{where}: {problem}"
        if rule:
            text += f" [rule: {rule}]"
        super().__init__(text)
