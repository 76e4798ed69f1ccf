"""JPEG decoding on the inference device: nvJPEG on CUDA through ``torchvision.io.decode_jpeg``.

The DataLoader workers only read and hash each file; ``probe_jpeg`` (in the worker) reads the
JPEG's headers and says whether the device decoder may take it as is. The main process decodes
a batch with one ``decode_jpeg(list, mode=RGB, device=...)`` call (batched nvJPEG on CUDA; the
same call decodes with libjpeg-turbo on the CPU) and resizes on that device with tensor ops that
follow the card's preprocessing in ``audits.images.load_for_model``: decode, RGB (or Pillow's
``L`` for 1-channel models), resize to ``[input] size`` with an antialiased bilinear filter
(Pillow's ``BILINEAR``), round to uint8; ``audits.inference.normalise`` then applies mean/std.
No crop: the card describes none.

Everything else goes to the Pillow path per image, so it is read exactly as before: not a
JPEG (PNG…), greyscale, CMYK/YCCK or Adobe-RGB JPEGs, 12-bit, lossless or arithmetic-coded
JPEGs, unusual chroma subsampling, an EXIF orientation other than 1, no end-of-image marker
after the scan (truncated), more pixels than Pillow's decompression-bomb limit, and any image
the device decoder fails on. A hostile file therefore still gets Pillow's one-line reason.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from PIL import Image

from audits.errors import AuditError

DECODE_CHOICES = ("auto", "cpu", "device")
JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif")

#: Decoder contract: a list of 1-D uint8 CPU tensors (JPEG bytes) and a device -> uint8
#: ``[3, H, W]`` tensors on that device; raises when any image fails (no partial results).
DecodeFn = Callable[[list[torch.Tensor], torch.device], list[torch.Tensor]]

# SOF markers the device decoder takes: baseline, extended sequential and progressive Huffman.
_SOF_OK = {0xC0, 0xC1, 0xC2}
# Every other SOF: lossless, hierarchical, arithmetic coding (libjpeg-turbo reads some of them;
# nvJPEG does not), so Pillow decodes them.
_SOF_OTHER = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_NO_LENGTH = {0x01, 0xD8} | set(range(0xD0, 0xD8))


def probe_jpeg(data: bytes) -> tuple[int, int] | str:
    """``(width, height)`` of a JPEG the device decoder may take as is, else why Pillow reads it.

    Reads only the marker segments before the first scan (and looks for the end marker after
    it); any doubt is a reason, never an exception."""
    try:
        return _probe(data)
    except (IndexError, struct.error, ValueError):
        return "unreadable JPEG headers"


def _probe(data: bytes) -> tuple[int, int] | str:
    if data[:2] != b"\xff\xd8":
        return "not a JPEG"
    pos, size, adobe_rgb = 2, None, False
    while pos < len(data):
        if data[pos] != 0xFF:
            return "unreadable JPEG headers"
        while data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in _NO_LENGTH:
            continue
        if marker == 0xD9:
            return "no image data"
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        segment = data[pos + 2 : pos + length]
        if length < 2 or len(segment) != length - 2:
            return "truncated JPEG headers"
        if marker in _SOF_OTHER:
            return "lossless, hierarchical or arithmetic-coded JPEG"
        if marker in _SOF_OK:
            size = _frame(segment)
            if isinstance(size, str):
                return size
        elif marker == 0xEE and segment[:5] == b"Adobe" and len(segment) >= 12:
            adobe_rgb = segment[11] == 0  # transform 0: three channels are RGB, not YCbCr
        elif marker == 0xE1 and segment[:6] == b"Exif\x00\x00":
            orientation = _exif_orientation(segment[6:])
            if orientation not in (None, 1):
                return f"EXIF orientation {orientation}"
        elif marker == 0xDA:  # start of scan: the headers are over
            if size is None:
                return "no frame header"
            if adobe_rgb:
                return "Adobe RGB-coded JPEG"
            # Without an end-of-image marker after the scan the file is cut short: Pillow
            # refuses it, while a decoder that pads with grey would not.
            if data.rfind(b"\xff\xd9") < pos:
                return "no end-of-image marker (truncated?)"
            return size
        pos += length
    return "no image data"


def _frame(segment: bytes) -> tuple[int, int] | str:
    """Width and height from a SOF segment, or why the device decoder should not take it."""
    precision, height, width, n_comp = struct.unpack(">BHHB", segment[:6])
    if precision != 8:
        return f"{precision}-bit JPEG"
    if n_comp == 1:
        return "greyscale JPEG"
    if n_comp != 3:
        return "CMYK/YCCK JPEG" if n_comp == 4 else f"{n_comp}-component JPEG"
    if height == 0 or width == 0:
        return "JPEG without a height in its frame header"
    if width * height > (Image.MAX_IMAGE_PIXELS or 0) > 0:
        return "more pixels than Pillow's decompression-bomb limit"
    comps = [segment[6 + 3 * k : 9 + 3 * k] for k in range(3)]
    if bytes(c[0] for c in comps) == b"RGB":  # component ids R, G, B: libjpeg reads it as RGB
        return "RGB-coded JPEG"
    luma_h, luma_v = comps[0][1] >> 4, comps[0][1] & 15
    chroma = [c[1] for c in comps[1:]]
    if luma_h not in (1, 2, 4) or luma_v not in (1, 2) or chroma != [0x11, 0x11]:
        return "unusual chroma subsampling"
    return width, height


def _exif_orientation(tiff: bytes) -> int | None:
    """The Orientation tag (0x0112) of IFD0 in an EXIF block; None when absent."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return None
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for k in range(count):
        entry = tiff[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag == 0x0112:
            if kind == 3:  # SHORT, stored in the first two bytes of the value field
                return int(struct.unpack(order + "H", entry[8:10])[0])
            return -1  # a malformed orientation: let Pillow's path read it
    return None


def torchvision_decode(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """``torchvision.io.decode_jpeg`` on a list (batched nvJPEG on CUDA), RGB, no EXIF rotation
    (the Pillow path does not rotate either)."""
    from audits.tv import torchvision

    io_ = torchvision.io
    if device.type == "cuda":
        # torchvision's CUDA decoder allocates on our stream but writes on its own without
        # waiting for ours (pytorch/vision#9606): memory the queued forward pass still reads
        # could be handed to it. Let that work finish first.
        torch.cuda.current_stream(device).synchronize()
    return io_.decode_jpeg(datas, mode=io_.ImageReadMode.RGB, device=device)


@lru_cache(maxsize=8)
def _probe_jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 90)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@lru_cache(maxsize=8)
def decoder_problem(device: str) -> str | None:
    """None when ``torchvision.io.decode_jpeg`` decodes a JPEG on ``device`` here, else why not.

    Tried once per device and process: a CPU-only torch cannot load torchvision's image
    extension (pytorch/vision#9085), and a CUDA build may lack nvJPEG."""
    dev = torch.device(device)
    if dev.type not in ("cpu", "cuda"):
        return f"decode_jpeg decodes on cpu or cuda, not {dev.type}"
    try:
        data = torch.frombuffer(bytearray(_probe_jpeg_bytes()), dtype=torch.uint8)
        out = torchvision_decode([data], dev)[0]
        if tuple(out.shape) != (3, 16, 16):
            return f"decode_jpeg returned {tuple(out.shape)} for a 16x16 RGB JPEG"
    except Exception as exc:  # any failure means: use Pillow
        text = str(exc).strip().splitlines()
        return f"torchvision cannot decode JPEGs on {dev.type} here ({text[0][:160] if text else type(exc).__name__})"
    return None


def choose_decode(requested: str, device: torch.device, paths: Sequence[str]) -> tuple[str, str]:
    """Which decode path runs: ``("cpu" | "device", why)``.

    ``auto``: the device path on CUDA when most listed files are JPEGs by name and the decoder
    works there; ``cpu``: Pillow in the workers (the default everywhere else); ``device``: the
    device path, an error where its decoder cannot run."""
    requested = str(requested).strip().lower()
    if requested not in DECODE_CHOICES:
        raise AuditError(f"--decode {requested}: expected one of {', '.join(DECODE_CHOICES)}")
    if requested == "cpu":
        return "cpu", "asked for"
    if requested == "device":
        problem = decoder_problem(str(device))
        if problem is not None:
            raise AuditError(f"--decode device: {problem}; use --decode cpu or auto")
        return "device", "asked for"
    if device.type != "cuda":
        return "cpu", f"no CUDA device ({device.type})"
    jpegs = sum(1 for p in paths if str(p).lower().endswith(JPEG_SUFFIXES))
    if not paths or jpegs * 2 < len(paths):
        return "cpu", f"{jpegs} of {len(paths)} files are JPEGs"
    problem = decoder_problem(str(device))
    if problem is not None:
        return "cpu", problem
    return "device", f"{jpegs} of {len(paths)} files are JPEGs"


def resize_like_pillow(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` resized to ``size`` (height, width) like Pillow's ``BILINEAR``.

    Pillow's bilinear filter widens with the reduction factor when shrinking (antialias), as
    does ``interpolate(..., antialias=True)``; both put pixel centres at half steps. Pillow
    works in fixed point with a uint8 intermediate between its horizontal and vertical passes,
    this in float32: a channel value differs by at most a level or two. Rounded half up, as
    Pillow rounds."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images  # Pillow returns a copy unchanged too
    x = F.interpolate(
        images.float(), size=size, mode="bilinear", align_corners=False, antialias=True
    )
    return (x + 0.5).floor_().clamp_(0, 255).to(torch.uint8)


def rgb_to_l(images: torch.Tensor) -> torch.Tensor:
    """Pillow's ``convert("L")`` of uint8 RGB ``[N, 3, H, W]``: ITU-R 601-2 luma in Pillow's
    fixed point (``(R*19595 + G*38470 + B*7471 + 0x8000) >> 16``), bit for bit."""
    x = images.to(torch.int32)
    luma = x[:, 0] * 19595 + x[:, 1] * 38470 + x[:, 2] * 7471 + 0x8000
    return (luma >> 16).to(torch.uint8).unsqueeze(1)


class DeviceDecoder:
    """Decodes a batch of JPEG bytes on ``device`` and resizes it to the card's input.

    ``decode_fn`` defaults to ``torchvision_decode``; tests pass another decoder with the same
    contract where torchvision's image extension cannot load."""

    #: Float values resized at once (a group of same-sized images is split above this), so that
    #: a batch of camera-sized photos never needs gigabytes of float32 at once.
    MAX_FLOATS = 64 * 1024 * 1024

    def __init__(
        self,
        device: torch.device,
        size: tuple[int, int],
        channels: int,
        decode_fn: DecodeFn | None = None,
    ) -> None:
        self.device, self.size, self.channels = device, tuple(size), channels
        self.decode_fn = decode_fn or torchvision_decode

    def __call__(
        self, datas: list[bytes | bytearray], shapes: list[tuple[int, int]]
    ) -> list[torch.Tensor | str]:
        """Per image: uint8 ``[C, h, w]`` on the device, or why it goes to the Pillow path.

        ``shapes`` are the headers' ``(width, height)``; a decoded image of another size is
        sent to Pillow rather than trusted."""
        if not datas:
            return []
        tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
        decoded = self._decode(tensors)
        out: list[torch.Tensor | str] = []
        groups: dict[tuple[int, int], list[int]] = {}
        for k, (img, (w, h)) in enumerate(zip(decoded, shapes, strict=True)):
            if isinstance(img, str):
                out.append(img)
            elif tuple(img.shape) != (3, h, w):
                out.append(f"decoded as {tuple(img.shape)}, header says 3x{h}x{w}")
            else:
                out.append("")
                groups.setdefault((h, w), []).append(k)
        for (h, w), members in groups.items():
            step = max(1, self.MAX_FLOATS // (3 * h * w))
            for start in range(0, len(members), step):
                part = members[start : start + step]
                batch = torch.stack([decoded[k] for k in part])  # type: ignore[misc]
                if self.channels == 1:
                    batch = rgb_to_l(batch)  # Pillow converts the mode before resizing
                resized = resize_like_pillow(batch, self.size)
                for k, img in zip(part, resized, strict=True):
                    out[k] = img
        return out

    def _decode(self, tensors: list[torch.Tensor]) -> list[torch.Tensor | str]:
        """One batched call; when it fails (no partial results) each image alone, so one bad
        file costs only itself the device path."""
        try:
            return list(self.decode_fn(tensors, self.device))
        except Exception:
            if len(tensors) == 1:
                return ["device decoder failed"]
        results: list[torch.Tensor | str] = []
        for t in tensors:
            try:
                results.append(self.decode_fn([t], self.device)[0])
            except Exception as exc:
                results.append(f"device decoder failed ({type(exc).__name__})")
        return results
