"""4D Gaussians as a 3DGS-style PLY file, and back.

The vertex layout is the one common Gaussian-splat viewers read (x y z, nx ny nz, f_dc_0..2,
opacity as a logit, scale_0..2 as logs, rot_0..3 as w x y z); viewers ignore the extra
properties that carry the 4D part: motion_0..(3D-1) (c_1 x y z, c_2 x y z, ...), t0 (seconds
since the time origin written in the header) and feat_0..(F-1).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from .gaussians import Gaussians4D

SH_C0 = 0.28209479177387814  # the degree-0 spherical harmonic: colour = 0.5 + SH_C0 * f_dc
_ORIGIN = re.compile(r"comment slarm time_origin (\S+)")


class PlyError(ValueError):
    """A PLY file that is not a 4D Gaussian file this module can read."""


def _columns(degree: int, feature_dim: int) -> list[str]:
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
             "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
            + [f"motion_{i}" for i in range(3 * degree)] + ["t0"] + [f"feat_{i}" for i in range(feature_dim)])


def write_ply(path: str | Path, g: Gaussians4D) -> Path:
    """Write Gaussians (float32 little-endian binary PLY)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = g.num
    np_ = lambda x: x.detach().double().cpu().numpy()
    opac = np.clip(np_(g.opacities), 1e-6, 1 - 1e-6)
    quats = np_(g.quats)
    quats = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    data = np.concatenate([
        np_(g.means), np.zeros((n, 3)), (np_(g.colors) - 0.5) / SH_C0, np.log(opac / (1 - opac))[:, None],
        np.log(np.maximum(np_(g.scales), 1e-12)), quats, np_(g.motion).reshape(n, -1), np_(g.t0)[:, None],
        np_(g.features),
    ], axis=1).astype("<f4")
    columns = _columns(g.degree, g.features.shape[1])
    header = ["ply", "format binary_little_endian 1.0", "comment slarm 4D Gaussians",
              f"comment slarm time_origin {g.time_origin!r}", f"element vertex {n}"]
    header += [f"property float {c}" for c in columns] + ["end_header"]
    with open(path, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(data.tobytes())
    return path


def read_ply(path: str | Path) -> Gaussians4D:
    """Read a file written by ``write_ply`` (or any 3DGS PLY: no motion, t0 = 0, no features)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PlyError(f"cannot read {path}: {e}") from e
    end = raw.find(b"end_header\n")
    if not raw.startswith(b"ply\n") or end < 0:
        raise PlyError(f"{path} is not a PLY file (no 'ply' magic or no end_header)")
    header = raw[:end].decode("ascii", errors="replace").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise PlyError(f"{path}: only binary little-endian PLY is supported")
    count, columns, origin = None, [], 0.0
    for line in header:
        if line.startswith("element vertex"):
            count = int(line.split()[2])
        elif line.startswith("element") and count is not None:
            break  # elements after the vertices are not ours
        elif line.startswith("property"):
            parts = line.split()
            if parts[1] != "float":
                raise PlyError(f"{path}: property {parts[-1]} is {parts[1]}, only float is supported")
            columns.append(parts[-1])
        elif m := _ORIGIN.fullmatch(line):
            origin = float(m.group(1))
    if count is None:
        raise PlyError(f"{path}: no vertex element")
    needed = {"x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
              "rot_0", "rot_1", "rot_2", "rot_3"}
    if missing := sorted(needed - set(columns)):
        raise PlyError(f"{path}: missing properties {missing}")
    body = raw[end + len(b"end_header\n"):]
    if len(body) < count * len(columns) * 4:
        raise PlyError(f"{path} is truncated: {len(body)} bytes of data for {count} vertices x {len(columns)} floats")
    data = np.frombuffer(body, dtype="<f4", count=count * len(columns)).reshape(count, len(columns)).astype(np.float64)
    col = {name: i for i, name in enumerate(columns)}
    pick = lambda names: torch.from_numpy(data[:, [col[n] for n in names]]).float()
    motion_cols = sorted((c for c in columns if c.startswith("motion_")), key=lambda c: int(c.split("_")[1]))
    feat_cols = sorted((c for c in columns if c.startswith("feat_")), key=lambda c: int(c.split("_")[1]))
    opacity_logit = pick(["opacity"])[:, 0]
    return Gaussians4D(
        means=pick(["x", "y", "z"]),
        quats=pick(["rot_0", "rot_1", "rot_2", "rot_3"]),
        scales=pick(["scale_0", "scale_1", "scale_2"]).exp(),
        opacities=torch.sigmoid(opacity_logit),
        colors=0.5 + SH_C0 * pick(["f_dc_0", "f_dc_1", "f_dc_2"]),
        motion=pick(motion_cols).reshape(count, -1, 3) if motion_cols else torch.zeros(count, 0, 3),
        features=pick(feat_cols) if feat_cols else torch.zeros(count, 0),
        t0=pick(["t0"])[:, 0] if "t0" in col else torch.zeros(count),
        time_origin=origin,
    )
