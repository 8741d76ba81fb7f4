"""The static half of the sandbox data: hashing, the course catalog, learning paths and learners.

Everything here is a pure function of `(seed, index)`, so any process rebuilds exactly the same
catalog and people without storing them. `model_activity.py` builds the time-dependent activity
on top, and `model_catalog_records.py` renders courses and paths as the API's records.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from math import gcd

from tap_udemy_business.sandbox import words

MASK64 = 0xFFFFFFFFFFFFFFFF

# Salts keep the hash streams of different kinds of things independent of one another.
SALT_COURSE = 1
SALT_ITEM = 2
SALT_PATH = 3
SALT_LEARNER = 4
SALT_ENROLL = 5
SALT_NAMES = 6

KIND_VIDEO = 0
KIND_NON_VIDEO = 1
KIND_QUIZ = 2
ITEM_TYPES = ("Lecture", "Non-video lecture", "Quiz")

ADMINS = 4  # learners 0..3 are the owner and admins: never anonymized, they assign courses
_COURSE_ID_BASE = 1_200_000
_ITEM_ID_BASE = 20_000_000
_PATH_ID_BASE = 4_100
_CUSTOM_PERCENT = 8  # courses the organization made itself
_QUIZ_EVERY = 5  # every 5th item is a quiz


def mix(x: int) -> int:
    """Splitmix64 finalizer: a fast, well-distributed bijection on 64-bit integers.

    Used instead of `random.Random` because seeding a generator per value is slow and its
    stream depends on call order; a hash of the coordinates gives every value independently.
    """
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def hash_of(base: int, salt: int, *parts: int) -> int:
    """Hash a tuple of small non-negative integers under the dataset's seed-derived `base`."""
    x = mix(base ^ salt)
    for part in parts:
        x = mix(x ^ (part & MASK64))
    return x


def pick(options: tuple[str, ...], h: int) -> str:
    """Choose one option from a word list by a hash value."""
    return options[h % len(options)]


def coprime_step(n: int, start: int) -> int:
    """Smallest step >= `start` coprime with `n`, so `i * step % n` visits every residue once."""
    step = start % n or 1
    while gcd(step, n) != 1:
        step += 1
    return step


def base62(value: int, length: int) -> str:
    """Render an integer as a fixed-length base62 string (external ids look like `00wYuHIx7`)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 62)
        chars.append(alphabet[rem])
    return "".join(chars)


def slugify(text: str) -> str:
    """ASCII URL slug; non-ASCII letters are dropped, as Udemy does for its course URLs."""
    out: list[str] = []
    for ch in text.lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


@dataclass(frozen=True, slots=True)
class Course:
    """One catalog course and the shape of its items (what activity rows need to know)."""

    index: int
    id: int
    h: int
    title: str
    slug: str
    topic: str
    category: str
    subcategory: str | None
    categories: tuple[str, ...]
    locale: str
    is_custom: bool
    kinds: bytes  # one KIND_* per item
    durations: array[int]  # centi-minutes of each video item, 0 for other items
    video_prefix: array[int]  # prefix sums of `durations`, length items + 1

    def item_id(self, j: int) -> int:
        """Catalog-wide unique id of the course's item `j`."""
        return _ITEM_ID_BASE + (self.index * len(self.kinds) + j) * 3 + 1


@dataclass(frozen=True, slots=True)
class Path:
    """One learning path: ordered sections of catalog courses."""

    index: int
    id: int
    h: int
    title: str
    sections: tuple[tuple[int, ...], ...]  # course indices per section
    courses: tuple[int, ...]  # all course indices, in path order


@dataclass(frozen=True, slots=True)
class Learner:
    """A learner's profile; the fields shared by every learner row."""

    index: int
    user_id: int
    email: str
    name: str | None
    surname: str | None
    role: str
    external_id: str | None
    lms_user_id: str | None
    join_day: int  # date ordinal
    join_sec: int
    deactivated: bool
    anonymized: bool


_TOPICS: tuple[tuple[str, str, str], ...] = tuple(
    (category, subcategory, topic)
    for category, subs in words.CATALOG
    for subcategory, topics in subs
    for topic in topics
)


def build_courses(base: int, count: int, items: int) -> tuple[Course, ...]:
    """Build the catalog, in id order.

    Titles are unique: course i takes the i-th (topic, template) pair of a seed-dependent
    permutation, and a volume number once the pairs run out.
    """
    templates = words.TITLE_TEMPLATES
    n_pairs = len(_TOPICS) * len(templates)
    # A step near n_pairs / golden ratio spreads neighbouring courses over distant topics.
    step = coprime_step(n_pairs, n_pairs * 618 // 1000 + base % 7)
    offset = base % n_pairs
    courses = []
    course_id = _COURSE_ID_BASE
    for i in range(count):
        h = hash_of(base, SALT_COURSE, i)
        pair = (i * step + offset) % n_pairs
        category, subcategory, topic = _TOPICS[pair // len(templates)]
        locale, template = templates[pair % len(templates)]
        title = template.format(t=topic)
        volume = i // n_pairs
        if volume:
            title += f" (Vol. {volume + 1})"
        is_custom = (h >> 8) % 100 < _CUSTOM_PERCENT
        categories: tuple[str, ...] = (category,)
        sub: str | None = subcategory
        if is_custom:
            categories = (category, pick(words.CUSTOM_CATEGORIES, h >> 16))
            sub = None if (h >> 24) % 2 else subcategory
        kinds = bytearray()
        durations = array("l")
        for j in range(items):
            ih = hash_of(base, SALT_ITEM, i, j)
            if j % _QUIZ_EVERY == _QUIZ_EVERY - 1:
                kinds.append(KIND_QUIZ)
                durations.append(0)
            elif ih % 7 == 0:
                kinds.append(KIND_NON_VIDEO)
                durations.append(0)
            else:
                kinds.append(KIND_VIDEO)
                durations.append(200 + (ih >> 8) % 2300)
        prefix = array("q", [0])
        for d in durations:
            prefix.append(prefix[-1] + d)
        course_id += 10_007 + (h >> 32) % 5_000
        slug = slugify(title) or f"course-{i}"
        courses.append(
            Course(
                i,
                course_id,
                h,
                title,
                slug,
                topic,
                category,
                sub,
                categories,
                locale,
                is_custom,
                bytes(kinds),
                durations,
                prefix,
            )
        )
    return tuple(courses)


def build_paths(base: int, count: int, courses: tuple[Course, ...]) -> tuple[Path, ...]:
    """Build learning paths of 2-4 courses in 2-4 sections, mostly from one category.

    A path's courses are distinct catalog courses; the first course decides path membership.
    """
    paths = []
    used: dict[str, int] = {}  # paths titled so far per category, to keep titles unique
    path_id = _PATH_ID_BASE
    n_courses = len(courses)
    for p in range(count):
        h = hash_of(base, SALT_PATH, p)
        first = courses[h % n_courses]
        candidates = sorted(
            (c for c in courses if c.index != first.index),
            key=lambda c: (c.category != first.category, hash_of(base, SALT_PATH, p, c.index)),
        )
        # 2-4 courses (so a learner with max_enrollments 4 can finish any path) in 2-4
        # sections of one course each, the last section taking any extra courses.
        size = min(2 + (h >> 16) % 3, n_courses)
        n_sections = min(size, 2 + (h >> 20) % 3)
        order = [first.index] + [c.index for c in candidates]
        sections: list[tuple[int, ...]] = []
        pos = 0
        for s in range(n_sections):
            take = 1 + (size - n_sections if s == n_sections - 1 else 0)
            sections.append(tuple(order[pos : pos + take]))
            pos += take
        titles = words.PATH_TITLES[first.category]
        same = used.get(first.category, 0)
        used[first.category] = same + 1
        title = titles[same % len(titles)]
        if same >= len(titles):
            title += f" ({same // len(titles) + 1})"
        path_id += 17 + (h >> 40) % 10
        flat = tuple(c for section in sections for c in section)
        paths.append(Path(p, path_id, h, title, tuple(sections), flat))
    return tuple(paths)


_POOL_SIZES = tuple(len(first) * len(last) for first, last in words.NAME_POOLS)
_NAME_COMBOS = sum(_POOL_SIZES)


def join_day(base: int, index: int, history_start: int, join_span: int) -> int:
    """Day learner `index` joined: admins before the history, others within `join_span` of it."""
    if index < ADMINS:
        return history_start - 30 - 11 * index
    return history_start + (hash_of(base, SALT_LEARNER, index) >> 40) % join_span


#: What a learner whose personal data was deleted is called in every learner row.
ANONYMIZED_EMAIL = "Anonymized User"


def build_learner(
    base: int, index: int, history_start: int, join_span: int, anonymized_ratio: float
) -> Learner:
    """Derive learner `index`'s profile from the seed alone.

    Names come from a permutation of all (first, last) pairs so e-mails are unique without any
    global bookkeeping: the i-th learner of each block of `_NAME_COMBOS` gets a distinct pair and
    later blocks append a number (`maría.garcía2@…`).
    """
    h = hash_of(base, SALT_LEARNER, index)
    anonymized = index >= ADMINS and (h & 0xFFFF) < anonymized_ratio * 65536
    if not index:
        role = "owner"
    elif index < ADMINS:
        role = "admin"
    else:  # a few more admins and group admins among the learners
        r = (h >> 16) % 100
        role = "group_admin" if r < 4 else "admin" if r < 6 else "student"  # noqa: PLR2004
    combo = (index * coprime_step(_NAME_COMBOS, 613) + base % _NAME_COMBOS) % _NAME_COMBOS
    block = index // _NAME_COMBOS
    pool = 0
    while combo >= _POOL_SIZES[pool]:
        combo -= _POOL_SIZES[pool]
        pool += 1
    firsts, lasts = words.NAME_POOLS[pool]
    first, first_slug = firsts[combo % len(firsts)]
    last, last_slug = lasts[combo // len(firsts)]
    tag = pick(words.EMAIL_TAGS, h >> 28) if (h >> 24) % 100 < 10 else ""  # noqa: PLR2004
    number = str(block + 1) if block else ""
    email = f"{first_slug}.{last_slug}{number}{tag}@{words.EMAIL_DOMAIN}"
    deactivated = (h >> 52) % 100 < (60 if anonymized else 3)
    external_id = base62(hash_of(base, SALT_NAMES, index), 9) if (h >> 32) % 100 < 78 else None  # noqa: PLR2004
    lms_user_id = str(10_000_000 + (h >> 8) % 90_000_000) if (h >> 36) % 100 < 55 else None  # noqa: PLR2004
    if anonymized:
        return Learner(
            index,
            10001 + index,
            ANONYMIZED_EMAIL,
            "Anonymized",
            "User",
            role,
            None,
            None,
            join_day(base, index, history_start, join_span),
            (h >> 20) % 86400,
            deactivated,
            anonymized=True,
        )
    return Learner(
        index,
        10001 + index,
        email,
        first,
        last,
        role,
        external_id,
        lms_user_id,
        join_day(base, index, history_start, join_span),
        (h >> 20) % 86400,
        deactivated,
        anonymized=False,
    )
