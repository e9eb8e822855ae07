"""Surface vocabularies of the three contexts of the synthetic task.

Every context describes the same kind of dependency graph: layer 0 holds *places* (zoos, towns,
festivals), layer 1 holds *kinds* (animals, school types, movie genres). An instance quantity is
"<kind> in <place>"; the abstract quantity of a place is the total over the kinds mentioned for it.
Context names follow the upstream templates (`crazy_zootopia`, `teachers_in_school`,
`movie_festival_awards`) of arXiv 2512.07783 / GSM-Infinite; the word lists are our own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Context:
    """One surface form: place names, kind names and the phrases around them.

    `total_phrase` names the abstract quantity of a place ("total number of adult animals");
    `unit_phrase` is the optional third layer ("newborn children": "average number of newborn
    children per adult owl in <place>", totalled as "total number of newborn children in <place>").
    the upstream template name is kept in `template` for reference.
    """

    key: str
    template: str
    places: tuple[str, ...]
    kinds: tuple[str, ...]
    total_phrase: str
    unit_phrase: str = ""


_ZOO_PLACES = tuple(
    f"{a} {b}"
    for a in ("Jefferson", "Bundle", "Maple", "Cedar", "Harbor", "Willow", "Granite", "Sunny")
    for b in ("Circus", "Ranch", "Zoo", "Farm")
)
_ZOO_KINDS = tuple(
    f"adult {animal}"
    for animal in (
        "owl", "wolf", "eagle", "bear", "fox", "deer", "lion", "tiger", "zebra", "camel",
        "goat", "sheep", "horse", "rabbit", "parrot", "penguin", "otter", "beaver", "moose",
        "bison", "crow", "swan", "hawk", "llama",
    )
)  # fmt: skip

_SCHOOL_PLACES = (
    "Hawkesbury", "Riverton", "Ashford", "Brookfield", "Clearwater", "Dunmore", "Elmstead",
    "Fairhaven", "Glenwood", "Hillcrest", "Ironbridge", "Juniper", "Kingsley", "Lakeside",
    "Millbrook", "Northgate", "Oakridge", "Pinewood", "Queensbury", "Redcliff", "Stonebridge",
    "Thornbury", "Upton", "Westfield",
)  # fmt: skip
_SCHOOL_KINDS = (
    "public highschool", "culinarian school", "elementary school", "private middle school",
    "art school", "music school", "dance school", "nursing school", "language school",
    "law school", "business school", "film school", "driving school", "flight school",
    "regional medical school", "public kindergarten", "private highschool", "boarding school",
    "coding school", "design school", "trade school", "sports academy", "science academy",
    "drama school",
)  # fmt: skip

_MOVIE_PLACES = tuple(
    f"{a} Movie Festival"
    for a in (
        "West Sahara", "Taylor", "Golden Lake", "Silver Coast", "Northern Lights", "Blue River",
        "Crimson Bay", "Emerald Hill", "Ocean Breeze", "Red Rock", "Summit", "Starlight",
        "Twin Peaks", "Valley", "Harbor City", "Oak Park",
    )
)  # fmt: skip
_MOVIE_KINDS = tuple(
    f"{adj} {genre}"
    for adj, genre in (
        ("upbeat metropolis", "comedy"), ("futuristic", "sci-fi movie"),
        ("solemn period", "drama"), ("gritty urban", "thriller"), ("calm nature", "documentary"),
        ("dark gothic", "horror movie"), ("romantic seaside", "comedy"),
        ("epic space", "opera"), ("quiet family", "drama"), ("fast action", "thriller"),
        ("classic western", "movie"), ("animated fantasy", "movie"), ("musical stage", "drama"),
        ("silent vintage", "comedy"), ("historic war", "drama"), ("modern crime", "thriller"),
        ("cozy holiday", "comedy"), ("wild adventure", "movie"), ("intense sports", "drama"),
        ("gentle coming-of-age", "drama"), ("spooky island", "thriller"),
        ("bright teen", "comedy"), ("deep ocean", "documentary"), ("royal court", "drama"),
    )
)  # fmt: skip

CONTEXTS: dict[str, Context] = {
    "zoo": Context(
        "zoo",
        "crazy_zootopia",
        _ZOO_PLACES,
        _ZOO_KINDS,
        "total number of adult animals",
        "newborn children",
    ),
    "school": Context(
        "school",
        "teachers_in_school",
        _SCHOOL_PLACES,
        _SCHOOL_KINDS,
        "total number of schools",
        "teachers",
    ),
    "movie": Context(
        "movie",
        "movie_festival_awards",
        _MOVIE_PLACES,
        _MOVIE_KINDS,
        "total number of movies",
        "nominations",
    ),
}

# Words of the statement, question and trace grammar (all contexts and both modes).
GRAMMAR_WORDS: tuple[str, ...] = (
    "The", "the", "number", "of", "equals", "plus", "times", "sum", "and", "difference", "between",
    "What", "is", "total", "How", "many", "does", "have", "Define", "as", "so", "Answer", "We",
    "know", "we", "have", "solve", "it", "through", "following", "steps", "don't", "its", "value",
    "yet", "but", "will", "find", "out", "later", "exists", "greater", "than", "Simplifying",
    "equation", "Move", "all", "terms", "to", "one", "side", "Solution", "Combine", "like", "a",
    "x", "in", "per",
)  # fmt: skip

# Append-only: words added after the first release go here, at the end of the vocabulary, so the
# ids of existing tokens (and checkpoints trained with them) never move.
APPENDED_WORDS: tuple[str, ...] = (
    "If", "how", "what", "average", "newborn", "children", "teachers", "nominations",
)  # fmt: skip

VARIABLE_NAMES: tuple[str, ...] = tuple("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
PUNCTUATION: tuple[str, ...] = (".", ",", ";", ":", "?", "=", "+", "-", "*", "/", "(", ")")


def context_words() -> list[str]:
    """All words of all contexts' place and kind names, sorted (tokenizer vocabulary)."""
    words: set[str] = set()
    for ctx in CONTEXTS.values():
        for phrase in (*ctx.places, *ctx.kinds, ctx.total_phrase):
            words.update(phrase.split())
    return sorted(words)


def get_context(key: str) -> Context:
    """The context named `key` ("zoo", "school", "movie"); clear error otherwise."""
    try:
        return CONTEXTS[key]
    except KeyError:
        raise ValueError(
            f"unknown synth context {key!r}; expected one of {sorted(CONTEXTS)}"
        ) from None
