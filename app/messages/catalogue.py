"""The service's messages to people: a ``Message`` names a catalogue entry and its
values, and is written out in the language a request prefers (``Accept-Language``).

Pipeline: a domain error or an answer carries a ``Message`` -> ``negotiate`` reads the
request's ``Accept-Language`` -> ``render`` fills that language's template (for a
counted message, its plural form for the ``count`` value). Ids, numbers and setting
names stay as they are in every language."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from app.messages import en, es

Language = Literal["en", "es"]
LANGUAGES: tuple[Language, ...] = ("en", "es")
# Clients that ask for nothing (curl, scripts) and for no language spoken here.
DEFAULT_LANGUAGE: Language = "en"
# A template, or a counted message's plural forms by CLDR name ("one", "other").
Template = str | Mapping[str, str]
CATALOGUES: dict[Language, Mapping[str, Template]] = {"en": en.MESSAGES, "es": es.MESSAGES}
# An Accept-Language header longer than this is read no further (it is a client's).
MAX_HEADER_CHARS = 500


@dataclass(frozen=True)
class Message:
    """A catalogue entry's key and the values its templates name."""

    key: str
    values: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.key not in en.MESSAGES:
            raise KeyError(f"No message {self.key!r} in the catalogue.")


def message(key: str, **values: object) -> Message:
    return Message(key, values)


def render(text: Message, language: Language = DEFAULT_LANGUAGE) -> str:
    """The message in ``language``; values that are messages themselves are rendered in
    the same language first."""
    values = {
        name: render(value, language) if isinstance(value, Message) else value
        for name, value in text.values.items()
    }
    template = CATALOGUES[language][text.key]
    if not isinstance(template, str):
        template = template[plural_form(values["count"])]
    return template.format(**values)


def plural_form(count: object) -> str:
    """CLDR's plural category of ``count`` in English and Spanish alike: "one" for
    exactly 1, "other" for every other number. Written by hand: Babel's rules would add a
    dependency for these two languages' one rule."""
    return "one" if count == 1 else "other"


def negotiate(accept_language: str | None) -> Language:
    """The language spoken here that ``Accept-Language`` prefers (RFC 9110: ranges by
    weight, ``es-AR`` counts as ``es``, ``*`` as any), else English.

    Written by hand: a dozen lines, where Babel's negotiation would add a dependency."""
    best_weight = 0.0
    chosen = DEFAULT_LANGUAGE
    for part in (accept_language or "")[:MAX_HEADER_CHARS].split(","):
        tag, _, parameters = part.strip().partition(";")
        name, _, value = parameters.strip().partition("=")
        try:
            weight = float(value) if name.strip().lower() == "q" else 1.0
        except ValueError:
            continue
        primary = tag.strip().lower().split("-")[0]
        language = DEFAULT_LANGUAGE if primary == "*" else primary
        # A higher weight wins; among equal weights, the one written first.
        if language in LANGUAGES and weight > best_weight:
            best_weight, chosen = weight, language
    return chosen
