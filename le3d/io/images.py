"""Image and video I/O for rendered frames.

- ``write_exr`` / ``read_exr``: linear float OpenEXR (float32 or float16), via the OpenEXR 3.x
  Python bindings (imageio's EXR plugin needs FreeImage, which is not available offline).
- ``write_png16`` / ``read_png16``: 16-bit RGB(A) PNG, encoded here with zlib (Pillow cannot write
  16-bit RGB), display-encoded values in [0, 1].
- ``write_png8`` / ``write_jpg``: 8-bit via imageio (Pillow).
- ``write_video``: 8-bit H.264 (sRGB frames) or 10-bit HEVC HDR with a real transfer function,
  PQ (SMPTE ST 2084, HDR10 tags) or HLG (ARIB STD-B67), BT.2020 primaries, through the ffmpeg binary
  that imageio-ffmpeg ships (it includes libx264 and libx265).

Images are ``[H, W, C]`` torch tensors or numpy arrays (C = 1, 3 or 4). Writes are atomic
(temporary file in the same directory, fsync, rename) and refuse to overwrite unless asked.
"""
from __future__ import annotations

import struct
import subprocess
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from le3d.io.atomic import atomic_write

__all__ = ["write_exr", "read_exr", "write_png16", "read_png16", "write_png8", "write_jpg", "write_video",
           "ffmpeg_exe", "ffmpeg_has_encoder", "VideoEncoderUnavailable"]


class VideoEncoderUnavailable(RuntimeError):
    """The bundled ffmpeg lacks the encoder needed for the requested video."""


def _to_numpy(img) -> np.ndarray:
    try:
        import torch

        if isinstance(img, torch.Tensor):
            img = img.detach().to("cpu")
            if img.dtype in (torch.bfloat16, torch.float16):
                img = img.float()
            img = img.numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an image [H, W, C] with C in (1, 3, 4), got shape {a.shape}")
    return a


def _atomic_write(path, data: bytes, overwrite: bool) -> Path:
    return atomic_write(path, data, overwrite=overwrite)


def _atomic_from_tmpfile(path, writer, overwrite: bool, suffix: str) -> Path:
    """Run ``writer(tmp_path)`` then fsync and rename to ``path``."""
    return atomic_write(path, writer=writer, overwrite=overwrite, suffix=suffix)


# ------------------------------------------------------------------------------------------------
# EXR


def write_exr(path, img, half: bool = False, overwrite: bool = True) -> Path:
    """Write linear float ``img [H, W, C]`` (C = 1: Y, 3: RGB, 4: RGBA) as ZIP-compressed OpenEXR,
    float16 if ``half`` else float32. Values are stored as is (no clipping)."""
    import OpenEXR

    a = _to_numpy(img).astype(np.float16 if half else np.float32)
    names = {1: "Y", 3: "RGB", 4: "RGBA"}[a.shape[-1]]
    chans = {names: np.ascontiguousarray(a[..., 0] if names == "Y" else a)}
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}

    def writer(tmp):
        with OpenEXR.File(header, chans) as f:
            f.write(tmp)

    return _atomic_from_tmpfile(path, writer, overwrite, ".exr")


def read_exr(path):
    """Read an OpenEXR file -> float32 torch tensor [H, W, C] (RGB, RGBA or Y; other layouts: the
    channels in alphabetical order)."""
    import OpenEXR
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such EXR file")
    try:
        with OpenEXR.File(str(path)) as f:
            chans = {k: np.asarray(v.pixels) for k, v in f.channels().items()}
    except Exception as e:  # OpenEXR raises bare exceptions for corrupt files
        raise ValueError(f"{path}: cannot read EXR ({e})") from None
    for key in ("RGBA", "RGB"):
        if key in chans:
            return torch.from_numpy(chans[key].astype(np.float32))
    if set("RGB") <= set(chans):
        keys = ["R", "G", "B"] + (["A"] if "A" in chans else [])
    else:
        keys = sorted(chans)
    arrs = [chans[k].astype(np.float32) for k in keys]
    arrs = [a if a.ndim == 3 else a[..., None] for a in arrs]
    return torch.from_numpy(np.concatenate(arrs, axis=-1))


# ------------------------------------------------------------------------------------------------
# PNG / JPEG


def _quantise(img, bits: int) -> np.ndarray:
    a = _to_numpy(img).astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError("image has NaN or infinite values")
    q = (1 << bits) - 1
    return np.round(np.clip(a, 0.0, 1.0) * q).astype(np.uint16 if bits > 8 else np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(path, img, overwrite: bool = True) -> Path:
    """16-bit PNG of display-encoded ``img`` in [0, 1] (clipped), C = 1, 3 or 4."""
    a = _quantise(img, 16)
    H, W, C = a.shape
    ctype = {1: 0, 3: 2, 4: 6}[C]
    raw = a.astype(">u2").reshape(H, W * C)
    rows = np.concatenate([np.zeros((H, 1), np.uint8), raw.view(np.uint8).reshape(H, W * C * 2)], axis=1)
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 16, ctype, 0, 0, 0))
            + _png_chunk(b"sRGB", b"\x00") + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + _png_chunk(b"IEND", b""))
    return _atomic_write(path, data, overwrite)


def read_png16(path) -> np.ndarray:
    """Read a non-interlaced 8- or 16-bit greyscale/RGB/RGBA PNG -> uint16/uint8 array [H, W, C]."""
    blob = Path(path).read_bytes()
    if blob[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, hdr = 8, [], None
    while pos < len(blob):
        (n,) = struct.unpack(">I", blob[pos: pos + 4])
        kind, body = blob[pos + 4: pos + 8], blob[pos + 8: pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    W, H, depth, ctype, _, _, interlace = hdr
    if interlace or depth not in (8, 16) or ctype not in (0, 2, 6):
        raise ValueError(f"{path}: unsupported PNG layout (depth {depth}, colour type {ctype}, interlace {interlace})")
    C = {0: 1, 2: 3, 6: 4}[ctype]
    bpp = C * depth // 8
    stride = W * bpp
    data = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(H, stride + 1)
    out = np.zeros((H, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(H):
        ft, line = data[y, 0], data[y, 1:].astype(np.int32)
        cur = np.zeros(stride, np.int32)
        if ft == 0:
            cur = line
        elif ft == 2:
            cur = (line + prev) & 0xFF
        else:
            for i in range(stride):  # filters 1, 3, 4 (slow path; our writer uses filter 0)
                a = cur[i - bpp] if i >= bpp else 0
                c = prev[i - bpp] if i >= bpp else 0
                b = prev[i]
                if ft == 1:
                    pred = a
                elif ft == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (line[i] + pred) & 0xFF
        out[y] = cur
        prev = cur
    u8 = out.astype(np.uint8)
    if depth == 16:
        return u8.reshape(H, W * C, 2).copy().view(">u2").reshape(H, W, C).astype(np.uint16)
    return u8.reshape(H, W, C)


def write_png8(path, img, overwrite: bool = True) -> Path:
    """8-bit PNG of display-encoded ``img`` in [0, 1] (clipped)."""
    import imageio.v3 as iio

    a = _quantise(img, 8)
    a = a[..., 0] if a.shape[-1] == 1 else a
    return _atomic_from_tmpfile(path, lambda tmp: iio.imwrite(tmp, a, extension=".png"), overwrite, ".png")


def write_jpg(path, img, quality: int = 95, overwrite: bool = True) -> Path:
    """8-bit JPEG of display-encoded ``img`` in [0, 1] (alpha dropped)."""
    import imageio.v3 as iio

    a = _quantise(img, 8)
    a = a[..., 0] if a.shape[-1] == 1 else a[..., :3]
    return _atomic_from_tmpfile(path, lambda tmp: iio.imwrite(tmp, a, extension=".jpg", quality=int(quality)),
                                overwrite, ".jpg")


# ------------------------------------------------------------------------------------------------
# video


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


_ENCODERS: dict[str, bool] = {}


def ffmpeg_has_encoder(name: str) -> bool:
    """Whether the bundled ffmpeg lists ``name`` in ``ffmpeg -encoders``."""
    if name not in _ENCODERS:
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
        _ENCODERS[name] = any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())
    return _ENCODERS[name]


def _frame_hdr_signal(frame, hdr: str, paper_white_nits: float, hlg_reference: float) -> np.ndarray:
    """Linear sRGB (BT.709 primaries) HDR frame, 1.0 = diffuse white -> BT.2020 PQ/HLG signal uint16."""
    import torch

    from le3d.post.transfer import BT709_TO_BT2020, hlg_oetf, pq_oetf

    x = frame if isinstance(frame, torch.Tensor) else torch.from_numpy(np.asarray(frame))
    x = x.detach().to("cpu", torch.float32)[..., :3]
    x = (x.clamp_min(0.0) @ BT709_TO_BT2020.T).clamp_min(0.0)
    s = pq_oetf(x * paper_white_nits) if hdr == "pq" else hlg_oetf(x * hlg_reference)
    return np.round(s.clamp(0, 1).numpy() * 65535.0).astype(np.uint16)


def write_video(path, frames: Iterable, fps: float = 30.0, hdr: str | None = None, *, crf: int = 18,
                preset: str = "medium", paper_white_nits: float = 203.0, max_cll: int = 1000,
                hlg_reference: float = 0.2647, overwrite: bool = True) -> Path:
    """Encode frames ``[H, W, 3]`` to a video file.

    ``hdr=None``: frames are display sRGB in [0, 1]; 8-bit H.264 (yuv420p, BT.709 matrix, sRGB tag).
    ``hdr="pq"``: frames are *linear* sRGB HDR where 1.0 is diffuse white (``paper_white_nits``,
    203 cd/m^2 per BT.2408); converted to BT.2020, encoded with the ST 2084 PQ curve, 10-bit HEVC
    (yuv420p10le) tagged bt2020nc / bt2020 / smpte2084 with HDR10 mastering metadata.
    ``hdr="hlg"``: same but the HLG OETF with 1.0 -> scene light ``hlg_reference`` (0.2647 puts
    diffuse white at the 75 % HLG reference level), tagged arib-std-b67.
    Odd sizes are padded to even by edge replication (yuv420 needs even dimensions); HDR frames
    narrower or lower than 64 pixels are padded to 64 (works around a libx265 crash on tiny frames)."""
    if hdr not in (None, "pq", "hlg"):
        raise ValueError(f"hdr must be None, 'pq' or 'hlg', got {hdr!r}")
    codec = "libx264" if hdr is None else "libx265"
    if not ffmpeg_has_encoder(codec):
        raise VideoEncoderUnavailable(
            f"the ffmpeg bundled with imageio-ffmpeg ({ffmpeg_exe()}) has no {codec} encoder; "
            + ("8-bit H.264" if hdr is None else "10-bit HEVC HDR video") + " cannot be written")
    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        raise ValueError(f"{path}: no frames to write") from None

    def encode(f):
        if hdr is None:
            a = _quantise(f, 8)
            a = np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a[..., :3]
        else:
            a = _frame_hdr_signal(f, hdr, paper_white_nits, hlg_reference)
        h, w = a.shape[:2]
        # yuv420 needs even sizes; the libx265 in the bundled ffmpeg corrupts its heap on some tiny
        # frames (e.g. 48 pixels wide), so HEVC frames smaller than one 64-pixel CTU are padded to 64
        ph = max(h + h % 2, 64 if hdr else 0) - h
        pw = max(w + w % 2, 64 if hdr else 0) - w
        if ph or pw:
            a = np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="edge")
        return np.ascontiguousarray(a)

    a0 = encode(first)
    H, W = a0.shape[:2]
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
           "-pix_fmt", "rgb24" if hdr is None else "rgb48le", "-s", f"{W}x{H}", "-r", str(fps), "-i", "-"]
    if hdr is None:
        cmd += ["-vf", "scale=out_color_matrix=bt709:out_range=tv", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                "-crf", str(crf), "-preset", preset,
                "-x264-params", "colorprim=bt709:transfer=iec61966-2-1:colormatrix=bt709:range=tv",
                "-colorspace", "bt709", "-color_primaries", "bt709",
                "-color_trc", "iec61966-2-1", "-color_range", "tv"]
    else:
        trc = "smpte2084" if hdr == "pq" else "arib-std-b67"
        x265 = ["colorprim=bt2020", f"transfer={trc}", "colormatrix=bt2020nc", "range=limited", "log-level=error"]
        if hdr == "pq":
            # HDR10 static metadata: BT.2020 primaries / D65 mastering display, 1000 nits peak
            x265 += ["hdr10=1", "master-display=G(8500,39850)B(6550,2300)R(35400,14600)WP(15635,16450)"
                     "L(10000000,1)", f"max-cll={int(max_cll)},{int(min(max_cll, 400))}"]
        cmd += ["-vf", "scale=in_range=full:out_color_matrix=bt2020nc:out_range=tv", "-c:v", "libx265",
                "-pix_fmt", "yuv420p10le", "-crf", str(crf), "-preset", preset, "-tag:v", "hvc1",
                "-x265-params", ":".join(x265), "-colorspace", "bt2020nc", "-color_primaries", "bt2020",
                "-color_trc", trc, "-color_range", "tv"]

    def writer(tmp):
        proc = subprocess.Popen(cmd + ["-f", "mp4", tmp], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            proc.stdin.write(a0.astype("<u2").tobytes() if hdr else a0.tobytes())
            for f in it:
                a = encode(f)
                if a.shape[:2] != (H, W):
                    raise ValueError(f"{path}: frame size {a.shape[1]}x{a.shape[0]} differs from the first ({W}x{H})")
                proc.stdin.write(a.astype("<u2").tobytes() if hdr else a.tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise RuntimeError(f"{path}: ffmpeg failed: {err.strip()[-500:]}")

    return _atomic_from_tmpfile(path, writer, overwrite, ".mp4")
