"""Uploaded query images: bounded, checked from their header before decoding, decoded as the archive is.

An upload is untrusted bytes. The checks run cheapest first, so a hostile file costs little: its size
(at most :data:`MAX_UPLOAD_BYTES`), its format (only the raster formats archives use; PIL is not allowed
to guess among all its plugins, some of which run external programs), its pixel count read from the
header (at most :data:`MAX_PIXELS`: a decompression bomb is a few kilobytes that would inflate to
gigabytes), then the file's own integrity (``verify``). Only then is it decoded, by the library's
:func:`~macl.data.images.read_image` itself, so an uploaded file becomes exactly the tensor the same
file in the archive would (16-bit, palette, alpha and grayscale converted the same way).

Before any of that, :class:`BodyLimit` bounds every request body, so an oversized upload is refused
while it arrives rather than spooled to disk first.
"""

from __future__ import annotations

import io
import tempfile

import torch
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from macl.data.errors import CorruptImageError
from macl.data.images import read_image

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
# The formats remote-sensing archives come in (those of macl.data.images.IMAGE_EXTENSIONS).
FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP")


class UploadRejected(Exception):
    """An upload the server will not decode; ``status`` is the HTTP status that says why (413, 415, 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes) -> torch.Tensor:
    """The uploaded image as a (3, H, W) ``uint8`` tensor, or :class:`UploadRejected` saying why not.

    ``data`` should have been read with a bound of ``MAX_UPLOAD_BYTES + 1`` bytes, so that an oversized
    upload is recognised without reading all of it.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRejected(413, f"the upload is over {MAX_UPLOAD_BYTES // 2**20} MB; send a smaller image")
    if not data:
        raise UploadRejected(400, "the upload is empty; choose an image file")
    image_format = _check_header(data)
    # read_image decodes files; the bytes go through a private temporary file so that the decoding (and
    # its conversions) is the library's own, not a copy of it.
    with tempfile.NamedTemporaryFile(prefix="macl-upload-", suffix=f".{image_format.lower()}") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            return read_image(tmp.name)
        except CorruptImageError as err:
            reason = err.__cause__ or "unreadable pixel data"
            raise UploadRejected(415, f"the {image_format} image cannot be decoded: {reason}") from err


def _check_header(data: bytes) -> str:
    """The image's format, after checking its size from the header and its integrity, without decoding."""
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as img:
            image_format = str(img.format)
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise UploadRejected(413, _too_many_pixels(f"{width}×{height}"))
            img.verify()
    except Image.DecompressionBombError as err:  # PIL's own guard fires in open() beyond 2× its limit
        raise UploadRejected(413, _too_many_pixels("its header's size")) from err
    except UnidentifiedImageError as err:
        raise UploadRejected(415, f"not an image in a supported format ({', '.join(FORMATS)})") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise UploadRejected(415, f"the image file is corrupt: {err}") from err
    return image_format


def _too_many_pixels(size: str) -> str:
    return f"the image is too large ({size}); at most {MAX_PIXELS // 1_000_000} megapixels are accepted"


class BodyLimit:
    """ASGI middleware refusing a request body over its path's limit with 413, before reading all of it.

    A declared ``Content-Length`` over the limit is refused at once; a body sent without one is counted
    as it arrives and refused at the first byte over. ``limits`` maps exact paths to their limit (the
    upload route); every other path gets ``default`` (JSON queries are a few hundred bytes).
    """

    def __init__(self, app: ASGIApp, default: int, limits: dict[str, int]) -> None:
        self.app, self.default, self.limits = app, default, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await JSONResponse({"detail": _too_large(limit)}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:  # raised inside the body parser; the app's handlers answer it as a 413
                raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counted, send)


def _too_large(limit: int) -> str:
    size = f"{limit / 2**20:.1f} MB" if limit >= 2**20 else f"{limit // 1024} KB"
    return f"the request body is over {size}; an image upload may be at most {MAX_UPLOAD_BYTES // 2**20} MB"
