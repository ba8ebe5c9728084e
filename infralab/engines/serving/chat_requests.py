"""The chat completion request as a client sends it: OpenAI's shape, the kit's limits.

Why a module of its own: these Pydantic models are the contract with every client (the
``openai`` package, SDKs, gateways); :mod:`infralab.engines.serving.chat` answers them and
:mod:`infralab.engines.serving.chat_scheduler` batches them, and neither needs to change when a
limit does. A request beyond a limit fails validation, which the service answers as a 400
naming the field (never a 500).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from infralab.engines.serving.api_errors import check_text

MAX_MESSAGES = 64
MAX_MESSAGE_CHARS = 16_000
MAX_TOKENS_LIMIT = 1024
DEFAULT_MAX_TOKENS = 256


class ContentPart(BaseModel):
    """A text part of a message (the list form of ``content`` that newer clients send)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message; ``developer`` (newer OpenAI clients) is the ``system`` role."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)

    @model_validator(mode="after")
    def _characters(self) -> ChatMessage:
        text = self.text()
        if len(text) > MAX_MESSAGE_CHARS:
            raise ValueError(
                f"content has {len(text):,} characters; the limit is {MAX_MESSAGE_CHARS:,} per "
                "message: shorten it or split it over several messages"
            )
        check_text(text, "content")
        return self


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


TokenCount = Annotated[StrictInt, Field(ge=1, le=MAX_TOKENS_LIMIT)]


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's request that a local model can honour; other fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: StrictInt = Field(default=1, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: StrictInt | None = None
    user: str | None = Field(default=None, max_length=256)

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > 4 or any(not s or len(s) > 64 for s in stops):
            raise ValueError("stop takes up to 4 non-empty strings of at most 64 characters")
        for s in stops:
            check_text(s, "stop")
        return v

    @field_validator("messages")
    @classmethod
    def _has_content(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" and m.text().strip() for m in v):
            raise ValueError("messages need at least one user message with text")
        return v
