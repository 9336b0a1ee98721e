"""Prompt templates: validation rules and a renderer that never raises.

Templates use named placeholders only: `{query}`, `{context}` and the tenant's
declared variables. We never call `str.format` on a tenant template: format
strings allow attribute and index access (`{query.__class__}`), which would let
a template read process internals. Instead the template is parsed into literal
text and names, checked, and joined by hand.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from raas.domain.errors import ValidationFailed
from raas.domain.screening import escape_fence_tags, normalise_for_screening

MAX_TEMPLATE_CHARS = 4000
MAX_VARIABLES = 20
MAX_VARIABLE_NAME_CHARS = 64
MAX_VARIABLE_VALUE_CHARS = 500
RESERVED_PLACEHOLDERS = frozenset({"query", "context"})
REQUIRED_PLACEHOLDERS = frozenset({"query"})

DEFAULT_TEMPLATE = (
    "You are a helpful assistant. Answer the question using only the context below. "
    "If the context does not contain the answer, say that you do not know.\n\n"
    "Context:\n{context}\n\nQuestion: {query}\n\nAnswer:"
)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Phrases that try to override the system's instructions. Matched on the normalised form
# (raas.domain.screening) of templates, variable values, and (in the query pipeline) queries and chunks.
_INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "override_instructions",
            r"\b(ignore|disregard|forget|override|bypass)\b[\s\w,]{0,40}?\b(previous|prior|above|earlier|preceding|"
            r"system|all|any|your|the)\b[\s\w]{0,20}?\b(instructions?|prompts?|rules|directions|guidelines)\b",
        ),
        (
            "reveal_instructions",
            r"\b(reveal|print|show|repeat|output|leak|display)\b[\s\w]{0,30}?\b(system\s+prompt|"
            r"hidden\s+(prompt|instructions?)|initial\s+(prompt|instructions?)|your\s+instructions?)\b",
        ),
        ("role_markup", r"(<\|?\s*/?\s*(system|im_start|im_end|assistant)\s*\|?>)|(\[/?INST\])|(^|\n)\s*#{2,}\s*system\s*:"),
        ("jailbreak", r"\b(jailbreak|jailbroken|do\s+anything\s+now|developer\s+mode\s+enabled|DAN\s+mode)\b"),
        ("new_instructions", r"\b(new|updated|revised)\s+(system\s+)?instructions\s*:"),
        ("role_reassignment", r"\byou\s+are\s+(now|no\s+longer)\s+(an?\s+)?(unrestricted|unfiltered|evil|different|new)\b"),
    )
)


@dataclass(frozen=True)
class TemplateViolation:
    rule: str
    message: str
    field: str = "prompt_template"

    def as_detail(self) -> dict[str, Any]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


class TemplateError(ValidationFailed):
    code = "invalid_prompt_template"


def find_injection(text: str) -> str | None:
    """Name of the first injection pattern found in `text`, or None.

    The patterns see `text` normalised for screening, so invisible characters, fullwidth or
    look-alike letters, accents and case cannot hide a phrase the model would still read.
    """
    screened = normalise_for_screening(text)
    glued = split_glued_keywords(screened)
    variants = (screened,) if glued == screened else (screened, glued)  # most text has no glued words: one pass
    for name, pattern in _INJECTION_PATTERNS:
        if any(pattern.search(variant) for variant in variants):
            return name
    return None


# Every word the patterns above spell out. Normalising strips invisible characters (so `ig\u200bnore` reads
# `ignore`), which also glues `ignore\u200bprevious` into `ignoreprevious` while a model still reads two
# words. Mapping invisibles to spaces instead would split `ig\u200bnore`, and the verdict would then depend
# on where an invisible sits; reading a token made only of these words as those words keeps the verdict
# the same wherever invisibles are inserted, and leaves ordinary words (`ignored`, `theory`) alone.
_SCREEN_WORDS = frozenset(
    {
        *("ignore", "disregard", "forget", "override", "bypass", "previous", "prior", "above", "earlier", "preceding"),
        *("system", "all", "any", "your", "the", "instruction", "instructions", "prompt", "prompts", "rules"),
        *("directions", "guidelines", "reveal", "print", "show", "repeat", "output", "leak", "display", "hidden"),
        *("initial", "jailbreak", "jailbroken", "do", "anything", "now", "developer", "mode", "enabled", "dan"),
        *("new", "updated", "revised", "you", "are", "no", "longer", "an", "a", "unrestricted", "unfiltered", "evil"),
        *("different", "inst", "im_start", "im_end", "assistant"),
    }
)
_LONGEST_SCREEN_WORD = max(map(len, _SCREEN_WORDS))
_MAX_GLUED_TOKEN = 200  # a run of screen words longer than this is not a phrase a pattern matches anyway
_ANY_SCREEN_WORD = "|".join(sorted(_SCREEN_WORDS, key=len, reverse=True))
# The only tokens (maximal runs of \w, as `\w+` finds them) that can be two or more screen words glued
# together: those that start with one and end with one. Matching them in C spares a Python call for
# every other word of a chunk. Backtracking is bounded: \w* backs off once per character of the token,
# trying the alternatives at each position.
_GLUED_CANDIDATE = re.compile(rf"\b(?:{_ANY_SCREEN_WORD})\w*(?:{_ANY_SCREEN_WORD})\b")


def split_glued_keywords(screened: str) -> str:
    """`screened` (already normalised) with each token made entirely of screen words written as those
    words, space-separated: `ignoreprevious` -> `ignore previous`; `ignored` stays, as `d` is no word."""
    return _GLUED_CANDIDATE.sub(lambda match: _segment(match.group()) or match.group(), screened)


def _segment(token: str) -> str | None:
    """The fewest screen words that spell `token` exactly, space-separated; None if there are none or it
    is one word already. Dynamic programming over end positions: linear in the token's length."""
    if len(token) > _MAX_GLUED_TOKEN or token in _SCREEN_WORDS:
        return None
    best: list[list[str] | None] = [[]] + [None] * len(token)
    for end in range(1, len(token) + 1):
        for start in range(max(0, end - _LONGEST_SCREEN_WORD), end):
            prefix = best[start]
            if prefix is not None and token[start:end] in _SCREEN_WORDS and (best[end] is None or len(prefix) + 1 < len(best[end] or [])):
                best[end] = [*prefix, token[start:end]]
    words = best[len(token)]
    return " ".join(words) if words and len(words) > 1 else None


def _parse(template: str) -> tuple[list[tuple[str, str | None]], list[TemplateViolation]]:
    """Splits a template into (literal, placeholder-name-or-None) parts, collecting rule violations."""
    try:
        raw_parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [], [TemplateViolation("unbalanced_braces", f"braces do not balance: {exc}; write {{{{ or }}}} for a literal brace")]
    parts: list[tuple[str, str | None]] = []
    violations: list[TemplateViolation] = []
    for literal, field, format_spec, conversion in raw_parts:
        if field is None:
            parts.append((literal, None))
            continue
        if conversion or format_spec:
            violations.append(
                TemplateViolation("format_spec_not_allowed", f"placeholder {{{field}}} may not use a conversion or format spec")
            )
        if "." in field or "[" in field:
            violations.append(
                TemplateViolation("attribute_or_index_access", f"placeholder {{{field}}} uses attribute or index access; use a plain name")
            )
        elif not _IDENTIFIER.fullmatch(field):
            violations.append(TemplateViolation("invalid_placeholder", f"placeholder {{{field}}} is not a name; use e.g. {{query}}"))
        parts.append((literal, field))
    return parts, violations


def template_violations(template: str, variables: dict[str, str]) -> list[TemplateViolation]:
    """Every rule the template and its variables break; empty when they are acceptable."""
    violations: list[TemplateViolation] = []
    if len(template) > MAX_TEMPLATE_CHARS:
        violations.append(TemplateViolation("template_too_long", f"template is longer than {MAX_TEMPLATE_CHARS} characters"))
    violations.extend(variable_violations(variables))
    parts, parse_violations = _parse(template)
    violations.extend(parse_violations)
    if not parse_violations:
        names = {name for _, name in parts if name is not None}
        allowed = RESERVED_PLACEHOLDERS | set(variables)
        for name in sorted(names - allowed):
            violations.append(
                TemplateViolation(
                    "unknown_placeholder",
                    f"placeholder {{{name}}} is neither query, context nor a declared prompt variable",
                )
            )
        for name in sorted(REQUIRED_PLACEHOLDERS - names):
            violations.append(TemplateViolation("missing_placeholder", f"template must contain {{{name}}}"))
    injection = find_injection(template)
    if injection:
        violations.append(TemplateViolation("prompt_injection", f"template contains an instruction-override pattern ({injection})"))
    return violations


def variable_violations(variables: dict[str, str]) -> list[TemplateViolation]:
    violations: list[TemplateViolation] = []
    if len(variables) > MAX_VARIABLES:
        violations.append(TemplateViolation("too_many_variables", f"at most {MAX_VARIABLES} prompt variables", "prompt_variables"))
    for name, value in variables.items():
        field = f"prompt_variables.{name}"
        if not _IDENTIFIER.fullmatch(name) or len(name) > MAX_VARIABLE_NAME_CHARS:
            violations.append(TemplateViolation("invalid_variable_name", f"variable name {name!r} must be an identifier", field))
        if name in RESERVED_PLACEHOLDERS:
            violations.append(TemplateViolation("reserved_variable_name", f"{name!r} is filled in by raas and cannot be declared", field))
        if not isinstance(value, str):
            violations.append(TemplateViolation("invalid_variable_value", "variable values must be strings", field))
            continue
        if len(value) > MAX_VARIABLE_VALUE_CHARS:
            violations.append(TemplateViolation("variable_too_long", f"value is longer than {MAX_VARIABLE_VALUE_CHARS} characters", field))
        injection = find_injection(value)
        if injection:
            violations.append(TemplateViolation("prompt_injection", f"value contains an instruction-override pattern ({injection})", field))
    return violations


def check_template(template: str, variables: dict[str, str]) -> None:
    violations = template_violations(template, variables)
    if violations:
        rules = ", ".join(sorted({v.rule for v in violations}))
        raise TemplateError(f"prompt template rejected: {rules}", details=[v.as_detail() for v in violations])


def render_prompt(template: str, *, query: str, context: str, variables: dict[str, str]) -> str:
    """Fills a template. Never raises: an unacceptable template falls back to the default one.

    Only `query`, `context` and the declared variables are ever substituted; values are
    inserted without being re-parsed, and a template without `{context}` gets the
    context appended after it so retrieval is never silently dropped. The query and the
    variable values have any `<document>` tag disarmed, so they can neither close the
    context's fences nor forge a document of their own; the context is already fenced.
    """
    safe_variables = {k: v for k, v in variables.items() if isinstance(k, str) and isinstance(v, str)}
    if template_violations(template, safe_variables):
        template, safe_variables = DEFAULT_TEMPLATE, {}
    disarmed = {name: escape_fence_tags(value) for name, value in safe_variables.items()}
    values = {**disarmed, "query": escape_fence_tags(query), "context": context}
    parts, _ = _parse(template)
    out: list[str] = []
    used_context = False
    for literal, name in parts:
        out.append(literal)
        if name is not None:
            out.append(values[name])
            used_context = used_context or name == "context"
    if not used_context and context:
        out.append("\n\nContext:\n" + context)
    return "".join(out)
