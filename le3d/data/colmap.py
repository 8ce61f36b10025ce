"""COLMAP sparse models: our own reader (binary and text) and writer, plus pose conversions.

COLMAP stores world-to-camera rotations as quaternions (w, x, y, z) and translations in OpenCV
camera axes, so a COLMAP pose is directly our ``viewmat``.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from le3d.errors import Le3dError

# model id -> (name, number of params)
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
    4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
}
MODEL_IDS = {name: (mid, n) for mid, (name, n) in CAMERA_MODELS.items()}


@dataclass
class ColmapCamera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray

    def intrinsics(self) -> tuple[np.ndarray, np.ndarray]:
        """K [3, 3] and OpenCV distortion (k1, k2, p1, p2) for the pinhole-family models."""
        p = self.params
        m = self.model
        dist = np.zeros(4)
        if m in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
            fx = fy = p[0]
            cx, cy = p[1], p[2]
            if m == "SIMPLE_RADIAL":
                dist[0] = p[3]
            elif m == "RADIAL":
                dist[:2] = p[3:5]
        elif m in ("PINHOLE", "OPENCV", "FULL_OPENCV"):
            fx, fy, cx, cy = p[:4]
            if m in ("OPENCV", "FULL_OPENCV"):
                dist[:] = p[4:8]
                if m == "FULL_OPENCV" and np.any(p[8:] != 0):
                    raise Le3dError(f"camera {self.id}: FULL_OPENCV with k3..k6 is not supported")
        else:
            raise Le3dError(f"camera {self.id}: COLMAP model {m} is not supported (pinhole/radial/OpenCV only)")
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)
        return K, dist


@dataclass
class ColmapImage:
    id: int
    qvec: np.ndarray  # w, x, y, z (world-to-camera)
    tvec: np.ndarray
    camera_id: int
    name: str
    xys: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point3D_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))

    def viewmat(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = qvec_to_rotmat(self.qvec)
        m[:3, 3] = self.tvec
        return m


@dataclass
class ColmapModel:
    cameras: dict[int, ColmapCamera]
    images: dict[int, ColmapImage]
    points: np.ndarray  # [P, 3]
    colors: np.ndarray  # [P, 3] uint8
    errors: np.ndarray  # [P]
    point_ids: np.ndarray  # [P]


def qvec_to_rotmat(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def rotmat_to_qvec(R) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    K = np.array([
        [R[0, 0] - R[1, 1] - R[2, 2], 0, 0, 0],
        [R[1, 0] + R[0, 1], R[1, 1] - R[0, 0] - R[2, 2], 0, 0],
        [R[2, 0] + R[0, 2], R[2, 1] + R[1, 2], R[2, 2] - R[0, 0] - R[1, 1], 0],
        [R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1], R[0, 0] + R[1, 1] + R[2, 2]],
    ]) / 3.0
    vals, vecs = np.linalg.eigh(K)
    q = vecs[[3, 0, 1, 2], np.argmax(vals)]
    return -q if q[0] < 0 else q


# ------------------------------------------------------------------------------------------ read


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        self.data = path.read_bytes()
        self.pos = 0

    def read(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise Le3dError(f"file {self.path}: truncated COLMAP binary file")
        out = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return out

    def array(self, dtype, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        n = dt.itemsize * count
        if self.pos + n > len(self.data):
            raise Le3dError(f"file {self.path}: truncated COLMAP binary file")
        a = np.frombuffer(self.data, dtype=dt, count=count, offset=self.pos)
        self.pos += n
        return a

    def cstring(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise Le3dError(f"file {self.path}: truncated COLMAP binary file")
        s = self.data[self.pos:end].decode("utf-8")
        self.pos = end + 1
        return s


def _read_cameras_bin(path: Path) -> dict[int, ColmapCamera]:
    r = _Reader(path)
    (n,) = r.read("Q")
    cams = {}
    for _ in range(n):
        cid, mid, w, h = r.read("iiQQ")
        if mid not in CAMERA_MODELS:
            raise Le3dError(f"file {path}: unknown camera model id {mid}")
        name, npar = CAMERA_MODELS[mid]
        cams[cid] = ColmapCamera(cid, name, int(w), int(h), np.array(r.read("d" * npar)))
    return cams


def _read_images_bin(path: Path) -> dict[int, ColmapImage]:
    r = _Reader(path)
    (n,) = r.read("Q")
    imgs = {}
    for _ in range(n):
        vals = r.read("I7di")
        iid, q, t, cid = vals[0], np.array(vals[1:5]), np.array(vals[5:8]), vals[8]
        name = r.cstring()
        (npts,) = r.read("Q")
        rec = r.array([("x", "<f8"), ("y", "<f8"), ("id", "<i8")], npts)
        imgs[iid] = ColmapImage(iid, q, t, cid, name, np.stack([rec["x"], rec["y"]], -1), rec["id"].copy())
    return imgs


def _read_points_bin(path: Path):
    r = _Reader(path)
    (n,) = r.read("Q")
    ids, xyz, rgb, err = np.zeros(n, np.int64), np.zeros((n, 3)), np.zeros((n, 3), np.uint8), np.zeros(n)
    for k in range(n):
        vals = r.read("Q3d3Bd")
        ids[k], xyz[k], rgb[k], err[k] = vals[0], vals[1:4], vals[4:7], vals[7]
        (tl,) = r.read("Q")
        r.pos += 8 * tl
    return xyz, rgb, err, ids


def _lines(path: Path):
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def _read_cameras_txt(path: Path) -> dict[int, ColmapCamera]:
    cams = {}
    for line in _lines(path):
        f = line.split()
        model = f[1]
        if model not in MODEL_IDS:
            raise Le3dError(f"file {path}: unknown camera model {model}")
        cams[int(f[0])] = ColmapCamera(int(f[0]), model, int(f[2]), int(f[3]), np.array([float(x) for x in f[4:]]))
    return cams


def _read_images_txt(path: Path) -> dict[int, ColmapImage]:
    imgs = {}
    lines = path.read_text().splitlines()
    lines = [ln for ln in lines if not ln.startswith("#")]
    k = 0
    while k < len(lines):
        line = lines[k].strip()
        if not line:
            k += 1
            continue
        f = line.split()
        if len(f) < 10:
            raise Le3dError(f"file {path}: malformed image line {line!r}")
        iid = int(f[0])
        q = np.array([float(x) for x in f[1:5]])
        t = np.array([float(x) for x in f[5:8]])
        cid, name = int(f[8]), " ".join(f[9:])
        pts = lines[k + 1].split() if k + 1 < len(lines) else []
        pts_a = np.array([float(x) for x in pts]).reshape(-1, 3) if pts else np.zeros((0, 3))
        imgs[iid] = ColmapImage(iid, q, t, cid, name, pts_a[:, :2], pts_a[:, 2].astype(np.int64))
        k += 2
    return imgs


def _read_points_txt(path: Path):
    ids, xyz, rgb, err = [], [], [], []
    for line in _lines(path):
        f = line.split()
        ids.append(int(f[0]))
        xyz.append([float(x) for x in f[1:4]])
        rgb.append([int(x) for x in f[4:7]])
        err.append(float(f[7]))
    return (np.array(xyz).reshape(-1, 3), np.array(rgb, dtype=np.uint8).reshape(-1, 3), np.array(err),
            np.array(ids, dtype=np.int64))


def read_model(path: str | os.PathLike) -> ColmapModel:
    """Read a COLMAP sparse model folder (``cameras``, ``images``, ``points3D`` as .bin or .txt)."""
    path = Path(path)
    if not path.is_dir():
        raise Le3dError(f"folder {path}: COLMAP model not found")
    try:
        if (path / "cameras.bin").is_file() and (path / "images.bin").is_file():
            cams = _read_cameras_bin(path / "cameras.bin")
            imgs = _read_images_bin(path / "images.bin")
            pts = _read_points_bin(path / "points3D.bin") if (path / "points3D.bin").is_file() else None
        elif (path / "cameras.txt").is_file() and (path / "images.txt").is_file():
            cams = _read_cameras_txt(path / "cameras.txt")
            imgs = _read_images_txt(path / "images.txt")
            pts = _read_points_txt(path / "points3D.txt") if (path / "points3D.txt").is_file() else None
        else:
            raise Le3dError(f"folder {path}: no cameras/images .bin or .txt COLMAP files")
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as exc:
        raise Le3dError(f"folder {path}: malformed COLMAP model ({exc})") from None
    if pts is None:
        pts = (np.zeros((0, 3)), np.zeros((0, 3), np.uint8), np.zeros(0), np.zeros(0, np.int64))
    for img in imgs.values():
        if img.camera_id not in cams:
            raise Le3dError(f"folder {path}: image {img.name} refers to missing camera {img.camera_id}")
    return ColmapModel(cams, imgs, *pts)


# ----------------------------------------------------------------------------------------- write


def write_model(model: ColmapModel, path: str | os.PathLike, binary: bool = False) -> None:
    """Write a model as COLMAP text (default) or binary files."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if binary:
        with open(path / "cameras.bin", "wb") as f:
            f.write(struct.pack("<Q", len(model.cameras)))
            for c in model.cameras.values():
                mid, n = MODEL_IDS[c.model]
                f.write(struct.pack("<iiQQ", c.id, mid, c.width, c.height))
                f.write(struct.pack("<" + "d" * n, *np.asarray(c.params, dtype=np.float64)))
        with open(path / "images.bin", "wb") as f:
            f.write(struct.pack("<Q", len(model.images)))
            for im in model.images.values():
                f.write(struct.pack("<I7di", im.id, *im.qvec, *im.tvec, im.camera_id))
                f.write(im.name.encode() + b"\x00")
                f.write(struct.pack("<Q", len(im.point3D_ids)))
                for (x, y), pid in zip(im.xys, im.point3D_ids):
                    f.write(struct.pack("<ddq", x, y, pid))
        with open(path / "points3D.bin", "wb") as f:
            f.write(struct.pack("<Q", len(model.points)))
            for pid, p, c, e in zip(model.point_ids, model.points, model.colors, model.errors):
                f.write(struct.pack("<Q3d3Bd", int(pid), *p, *[int(v) for v in c], float(e)))
                f.write(struct.pack("<Q", 0))
        return
    with open(path / "cameras.txt", "w") as f:
        f.write("# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n")
        for c in model.cameras.values():
            f.write(f"{c.id} {c.model} {c.width} {c.height} " + " ".join(repr(float(p)) for p in c.params) + "\n")
    with open(path / "images.txt", "w") as f:
        f.write("# Image list with two lines of data per image:\n"
                "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n#   POINTS2D[] as (X, Y, POINT3D_ID)\n")
        for im in model.images.values():
            f.write(f"{im.id} " + " ".join(repr(float(v)) for v in (*im.qvec, *im.tvec)) + f" {im.camera_id} {im.name}\n")
            f.write(" ".join(f"{x!r} {y!r} {int(p)}" for (x, y), p in zip(im.xys.tolist(), im.point3D_ids)) + "\n")
    with open(path / "points3D.txt", "w") as f:
        f.write("# 3D point list with one line of data per point:\n"
                "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n")
        for pid, p, c, e in zip(model.point_ids, model.points, model.colors, model.errors):
            f.write(f"{int(pid)} {float(p[0])!r} {float(p[1])!r} {float(p[2])!r} {int(c[0])} {int(c[1])} {int(c[2])} {float(e)!r}\n")


def model_from_cameras(cameras, points=None, colors=None) -> ColmapModel:
    """Build a model from our ``Camera`` objects (one PINHOLE camera per image) and points."""
    cams, imgs = {}, {}
    for k, cam in enumerate(cameras, start=1):
        K = np.asarray(cam.K, dtype=np.float64)
        cams[k] = ColmapCamera(k, "PINHOLE", int(cam.width), int(cam.height),
                               np.array([K[0, 0], K[1, 1], K[0, 2], K[1, 2]]))
        V = np.asarray(cam.viewmat, dtype=np.float64)
        imgs[k] = ColmapImage(k, rotmat_to_qvec(V[:3, :3]), V[:3, 3].copy(), k, cam.name)
    pts = np.zeros((0, 3)) if points is None else np.asarray(points, dtype=np.float64)
    col = np.zeros((len(pts), 3), np.uint8) if colors is None else np.asarray(colors).astype(np.uint8)
    return ColmapModel(cams, imgs, pts, col, np.zeros(len(pts)), np.arange(1, len(pts) + 1))
