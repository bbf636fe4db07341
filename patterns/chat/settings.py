"""The chat pattern's settings section (images for vision models)."""
from __future__ import annotations

from typing import ClassVar

from bot.core.settings import Section, env


class ChatSettings(Section):
    title: ClassVar[str] = "Chat"

    vision_models: str = env(
        "AIBOT_VISION_MODELS", "gpt-4o*,gpt-4.1*,gpt-5*,o3*,o4-mini*,gemini-*,claude-*,llava*,*-vision*,qwen*-vl*",
        description="comma-separated model names (globs) that can see images: images sent with a question "
        "go to `AIBOT_CHAT_MODEL` only when it matches",
    )
    max_image_mb: float = env(
        "AIBOT_MAX_IMAGE_MB", 5.0, gt=0, le=20,
        description="largest image sent to the model (bigger ones get a clear refusal; images are never stored)",
    )
    max_images: int = env("AIBOT_MAX_IMAGES", 4, ge=1, le=10, description="images per question")
