"""Atomic files: safetensors for tensors, JSON for metadata (never pickle)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from le3d.errors import Le3dError
from le3d.io.atomic import atomic_write


def atomic_write_bytes(path: str | os.PathLike, data: bytes):
    atomic_write(path, data)


def save_tensors(path, tensors: dict[str, torch.Tensor], metadata: dict | None = None):
    t = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    atomic_write_bytes(path, save(t, metadata=meta))


def load_tensors(path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise Le3dError(f"{path}: file not found") from None
    except Exception as exc:  # noqa: BLE001
        raise Le3dError(f"{path}: not a readable safetensors file ({exc})") from None


def save_json(path, obj):
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def load_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise Le3dError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise Le3dError(f"{path}: invalid JSON ({exc})") from None
