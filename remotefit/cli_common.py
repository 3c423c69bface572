"""What the client commands share: output as asked, and uploading the files a spec names."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from remotefit.client import Client


def print_as_asked(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def refer_to_uploads(client: Client, spec: dict[str, Any], files: list[Path]) -> None:
    """Upload ``files``; a split's ``"dataset": "@FILE"`` (or none, with one file) gets its id."""
    uploaded = {str(path): client.datasets.upload(path)["id"] for path in files}
    for split in (spec.get("data") or {}).values():
        if not isinstance(split, dict):
            continue
        reference = split.get("dataset")
        if isinstance(reference, str) and reference.startswith("@"):
            if reference[1:] not in uploaded:
                raise ValueError(f"{reference} is not among the --data files {list(uploaded)}")
            split["dataset"] = uploaded[reference[1:]]
        elif reference is None and len(uploaded) == 1 and isinstance(split.get("x"), str):
            split["dataset"] = next(iter(uploaded.values()))
