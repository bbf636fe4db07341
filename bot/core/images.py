"""Images sent with a question, for vision-capable chat models: which attachments are
images, whether a model can see them, and the OpenAI content parts that carry them
(`image_url` parts with `data:` URLs). The bytes are read from the platform when the
question is answered and live only in that request: never stored, cached or logged."""
from __future__ import annotations

import base64
import fnmatch
import mimetypes

from bot.core.errors import UserError
from bot.core.messages import Attachment

# what OpenAI-compatible vision endpoints accept
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


def image_type(att: Attachment) -> str | None:
    """The image MIME type of an attachment (from the platform, else its name), or None."""
    kind = (att.mimetype or "").split(";")[0].strip().lower() or (mimetypes.guess_type(att.name)[0] or "")
    kind = "image/jpeg" if kind == "image/jpg" else kind
    return kind if kind in IMAGE_TYPES else None


def images_of(attachments: tuple[Attachment, ...]) -> list[Attachment]:
    return [a for a in attachments if image_type(a)]


def only_images(attachments: tuple[Attachment, ...]) -> bool:
    return bool(attachments) and all(image_type(a) for a in attachments)


def vision_capable(model: str, patterns: str) -> bool:
    """Whether `model` matches one of the comma-separated names or globs in `patterns`."""
    name = model.strip().lower()
    return any(fnmatch.fnmatchcase(name, p.strip().lower()) for p in patterns.split(",") if p.strip())


def _mb(n: float) -> str:
    return f"{n / 1_048_576:.1f} MB"


async def image_parts(conv, attachments: list[Attachment], *, max_bytes: int, max_images: int) -> list[dict]:
    """`image_url` content parts for the images, read through `conv`; a UserError names
    an image over the size limit (checked before and after the download)."""
    if len(attachments) > max_images:
        raise UserError(f"I can look at {max_images} image{'s' if max_images != 1 else ''} at a time; "
                        f"you sent {len(attachments)}.")
    parts = []
    for att in attachments:
        if att.size is not None and att.size > max_bytes:
            raise UserError(f"{att.name} is too large for me to look at ({_mb(att.size)}; the limit is {_mb(max_bytes)}).")
        data = await conv.download(att)
        if len(data) > max_bytes:
            raise UserError(f"{att.name} is too large for me to look at ({_mb(len(data))}; the limit is {_mb(max_bytes)}).")
        url = f"data:{image_type(att)};base64,{base64.b64encode(data).decode('ascii')}"
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts
