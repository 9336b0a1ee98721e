"""Chat models: OpenAI and Anthropic (SDKs imported only when used) and an offline extractive answerer."""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

from raas.domain.errors import GatewayTimeout, ServiceUnavailable
from raas.domain.generation import Generation, GenerationRequest

OFFLINE_MODEL = "offline-extractive"


class OpenAIChat:
    def __init__(self, api_key: str, *, timeout: float, max_retries: int, base_url: str | None = None):
        import openai

        self.client = openai.OpenAI(api_key=api_key, timeout=timeout, max_retries=max_retries, base_url=base_url)

    def generate(self, request: GenerationRequest) -> Generation:
        import openai

        try:
            response = self.client.chat.completions.create(**_openai_arguments(request))
        except openai.APITimeoutError as exc:
            raise _timed_out() from exc
        except openai.APIError as exc:
            raise _unavailable(exc) from exc
        usage = response.usage
        return Generation(
            text=response.choices[0].message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            model=request.model_name,
        )

    def stream(self, request: GenerationRequest) -> Generator[str | Generation, None, None]:
        """Text deltas through the SDK's own streaming, then the Generation with the provider's usage
        (`stream_options.include_usage`: the last chunk carries it). Closing the iterator closes the
        response, so the provider stops generating."""
        import httpx
        import openai

        parts: list[str] = []
        prompt_tokens = completion_tokens = 0
        try:
            stream = self.client.chat.completions.create(
                **_openai_arguments(request),
                stream=True,
                stream_options={"include_usage": True},
            )
        except openai.APITimeoutError as exc:
            raise _timed_out() from exc
        except openai.APIError as exc:
            raise _unavailable(exc) from exc
        try:
            for chunk in stream:
                if chunk.usage:
                    prompt_tokens, completion_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta else None
                    if text:
                        parts.append(text)
                        yield text
        except (openai.APIError, httpx.HTTPError) as exc:
            raise ServiceUnavailable(f"the language model stream broke ({type(exc).__name__}); try again", code="llm_unavailable") from exc
        finally:
            stream.close()
        yield Generation(text="".join(parts), prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, model=request.model_name)


def _openai_arguments(request: GenerationRequest) -> dict[str, Any]:
    return {
        "model": request.model.provider_model_id,
        "messages": [{"role": "system", "content": request.system}, {"role": "user", "content": request.prompt}],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }


def _anthropic_arguments(request: GenerationRequest) -> dict[str, Any]:
    return {
        "model": request.model.provider_model_id,
        "system": request.system,
        "messages": [{"role": "user", "content": request.prompt}],
        "max_tokens": request.max_tokens,
        # Sent as a raw field: SDK 2.x no longer types sampling parameters, the API still takes them (0-1).
        "extra_body": {"temperature": min(request.temperature, 1.0)},
    }


def _timed_out() -> GatewayTimeout:
    return GatewayTimeout("the language model timed out; try again", code="llm_timeout")


def _unavailable(exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(f"the language model is unavailable ({type(exc).__name__}); try again", code="llm_unavailable")


class AnthropicChat:
    def __init__(self, api_key: str, *, timeout: float, max_retries: int, base_url: str | None = None):
        import anthropic

        self.client = anthropic.Anthropic(api_key=api_key, timeout=timeout, max_retries=max_retries, base_url=base_url)

    def generate(self, request: GenerationRequest) -> Generation:
        import anthropic

        try:
            response = self.client.messages.create(**_anthropic_arguments(request))
        except anthropic.APITimeoutError as exc:
            raise _timed_out() from exc
        except anthropic.APIError as exc:
            raise _unavailable(exc) from exc
        text = "".join(getattr(block, "text", "") for block in response.content if getattr(block, "type", "") == "text")
        return Generation(
            text=text,
            prompt_tokens=response.usage.input_tokens,
            completion_tokens=response.usage.output_tokens,
            model=request.model_name,
        )

    def stream(self, request: GenerationRequest) -> Generator[str | Generation, None, None]:
        """Text deltas through the SDK's message stream, then the Generation with the final message's usage.
        Closing the iterator leaves the stream's context, which closes the response."""
        import anthropic
        import httpx

        parts: list[str] = []
        try:
            with self.client.messages.stream(**_anthropic_arguments(request)) as stream:
                for text in stream.text_stream:
                    parts.append(text)
                    yield text
                final = stream.get_final_message()
        except anthropic.APITimeoutError as exc:
            raise _timed_out() from exc
        except (anthropic.APIError, httpx.HTTPError) as exc:
            raise _unavailable(exc) from exc
        yield Generation(
            text="".join(parts),
            prompt_tokens=final.usage.input_tokens,
            completion_tokens=final.usage.output_tokens,
            model=request.model_name,
        )


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n\s*\n")
_WORD = re.compile(r"\w+")
_HEADING_MARK = re.compile(r"^#{1,6}\s+", re.MULTILINE)
_STOPWORDS = frozenset(
    {
        *("a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "but", "is", "are", "was", "were", "be", "been"),
        *("what", "which", "who", "whom", "how", "why", "when", "where", "does", "do", "did", "with", "by", "as", "at"),
        *("from", "that", "this", "these", "those", "it", "its", "into", "about", "can", "could", "should", "would", "will"),
    }
)


def _terms(text: str) -> set[str]:
    return {w for w in (t.lower() for t in _WORD.findall(text)) if w not in _STOPWORDS and len(w) > 1}


class OfflineExtractive:
    """Answers without a language model: the passages' sentences that share the most terms with
    the question, each cited as [n]. Used locally when no provider key is configured, and says so."""

    offline = True  # no language model behind it: a conversation's follow-up is rewritten offline instead

    def __init__(self, max_sentences: int = 3):
        self.max_sentences = max_sentences

    def generate(self, request: GenerationRequest) -> Generation:
        question = _terms(request.query)
        scored: list[tuple[float, int, int, str]] = []
        for index, passage in enumerate(request.passages, start=1):
            prose = _HEADING_MARK.sub("", passage.strip())
            for order, sentence in enumerate(_SENTENCE.split(prose)):
                overlap = len(question & _terms(sentence))
                if overlap:
                    # earlier passages rank higher: they were retrieved first
                    scored.append((overlap + 1.0 / (index + 1), -index, -order, f"{sentence.strip()} [{index}]"))
        chosen = sorted(scored, reverse=True)[: self.max_sentences]
        if chosen:
            text = " ".join(s for *_, s in sorted(chosen, key=lambda c: (-c[1], -c[2])))
        else:
            text = "The documents do not contain an answer to this question."
        return Generation(
            text=text,
            prompt_tokens=0,
            completion_tokens=0,
            model=OFFLINE_MODEL,
            offline=True,
        )

    def stream(self, request: GenerationRequest) -> Generator[str | Generation, None, None]:
        """The same answer word by word, then the finished Generation (`raas local` streams it like a model)."""
        generation = self.generate(request)
        yield from _PIECE.findall(generation.text)
        yield generation


_PIECE = re.compile(r"\s*\S+")


def provider_client(provider: str, api_key: str, *, timeout: float, max_retries: int, base_url: str | None = None) -> Any:
    if provider == "openai":
        return OpenAIChat(api_key, timeout=timeout, max_retries=max_retries, base_url=base_url)
    if provider == "anthropic":
        return AnthropicChat(api_key, timeout=timeout, max_retries=max_retries, base_url=base_url)
    raise ValueError(f"unknown provider {provider}")
