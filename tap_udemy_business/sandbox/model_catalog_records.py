"""The catalog as the API shows it: `@all` course and learning-path records, item titles.

Split from `model_catalog.py`, which builds the catalog: these functions only read it, so the
shapes of the records can change without touching how the catalog is derived from the seed.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from tap_udemy_business.sandbox import words
from tap_udemy_business.sandbox.model_catalog import (
    KIND_NON_VIDEO,
    KIND_QUIZ,
    KIND_VIDEO,
    mix,
    pick,
    slugify,
)

if TYPE_CHECKING:
    from tap_udemy_business.sandbox.model_catalog import Course, Learner, Path

PORTAL_URL = "https://acme.udemy.com"


def estimated_length(course: Course) -> int:
    """Minutes to consume a course: its video plus a flat estimate for readings and quizzes."""
    kinds = course.kinds
    return (
        course.video_prefix[-1] // 100
        + kinds.count(KIND_NON_VIDEO) * 6
        + kinds.count(KIND_QUIZ) * 10
    )


def course_record(course: Course, today0: date) -> dict[str, object]:
    """Render a catalog course as the API's `@all` course object."""
    h = course.h
    topic = course.topic
    noun = pick(words.NOUNS, h >> 3)
    kinds = course.kinds
    num_quizzes = kinds.count(KIND_QUIZ)
    stamp = f"{2019 + (h >> 5) % 7}-{1 + (h >> 9) % 12:02d}-{1 + (h >> 13) % 28:02d}"
    promo: list[dict[str, object]] | None = [
        {
            "type": "video/mp4",
            "label": label,
            "file": f"https://mp4-c.udemycdn.com/{stamp}_{course.id}/WebHD_{label}p.mp4"
            f"?token={(h >> 17) & 0xFFFFFF:06x}",
        }
        for label in ("720", "480", "360")
    ]
    if (h >> 44) % 10 == 0:
        promo = [] if (h >> 48) % 2 else None
    image_hash = f"{(h >> 20) & 0xFFFFFF:06x}"
    images = {
        f"size_{size}": f"https://img-c.udemycdn.com/course/{size}/{course.id}_{image_hash}.jpg"
        for size in words.IMAGE_SIZES
    }
    n_req = (h >> 50) % 4
    requirements: dict[str, object] = (
        {"list": [r.format(t=topic) for r in words.REQUIREMENTS[:n_req]]} if n_req else {}
    )
    outcomes = [o.format(t=topic, n=noun) for o in words.OUTCOMES[: 2 + (h >> 53) % 4]]
    accreditations: list[dict[str, object]] = []
    if (h >> 56) % 12 == 0:
        kind, body = words.ACCREDITATION_BODIES[(h >> 58) % len(words.ACCREDITATION_BODIES)]
        accreditations.append({"type": kind, "credits": float(1 + (h >> 60) % 8) / 2, "body": body})
    n_instructors = 1 + (h >> 61) % 2
    instructors = [
        words.INSTRUCTORS[(h + k * 7) % len(words.INSTRUCTORS)] for k in range(n_instructors)
    ]
    headline = None if (h >> 30) % 15 == 0 else pick(words.HEADLINES, h >> 34).format(t=topic)
    days_ago = 30 + (h >> 22) % 900
    return {
        "_class": "course",
        "id": course.id,
        "title": course.title,
        "headline": headline,
        "description": (
            f"<p>Learn <strong>{topic}</strong> the practical way. This course walks you through "
            f"{noun} with short videos, exercises and quizzes.</p>"
            f"<ul><li>{outcomes[0]}</li><li>{outcomes[1]}</li></ul>"
            f"<p>Made for busy professionals &amp; teams.</p>"
        ),
        "url": f"{PORTAL_URL}/course/{course.slug}/",
        "estimated_content_length": estimated_length(course),
        "categories": list(course.categories),
        "topics": [
            {
                "id": 5_000 + (course.index * 3 + k) % 997,
                "title": t,
                "url": f"https://www.udemy.com/topic/{slugify(t) or 'topic'}/",
            }
            for k, t in enumerate((topic, noun.capitalize())[: 1 + (h >> 62) % 2])
        ],
        "num_lectures": len(kinds) - num_quizzes,
        "num_videos": kinds.count(KIND_VIDEO),
        "num_quizzes": num_quizzes,
        "promo_video_url": promo,
        "video_preview_urls": [
            f"https://mp4-c.udemycdn.com/{stamp}_{course.id}/preview_{k}.mp4"
            for k in range((h >> 46) % 3)
        ],
        "instructors": instructors,
        "requirements": requirements,
        "what_you_will_learn": {"list": outcomes},
        "images": images,
        "locale": course.locale,
        "level": pick(words.LEVELS, h >> 38),
        "is_custom": course.is_custom,
        "is_imported": course.is_custom and (h >> 42) % 4 == 0,
        "accreditations": accreditations,
        "last_update_date": date.fromordinal(today0.toordinal() - days_ago).isoformat(),
    }


def item_title(course: Course, j: int) -> str:
    """Title of a course item, matching its kind (a quiz reads like a quiz)."""
    h = mix(course.h ^ (j + 1))
    noun = pick(words.NOUNS, h >> 8)
    kind = course.kinds[j]
    if kind == KIND_QUIZ:
        options = words.QUIZ_TITLES
    elif kind == KIND_NON_VIDEO:
        options = words.NON_VIDEO_TITLES
    else:
        options = words.LECTURE_TITLES
    if j == 0 and kind == KIND_VIDEO:
        return f"Introduction to {course.topic}"
    return pick(options, h).format(t=course.topic, n=noun)


def is_pro_path(path: Path) -> bool:
    """Whether a path is a Udemy Pro path (about one in five)."""
    return (path.h >> 50) % 5 == 0


def path_record(
    path: Path, courses: tuple[Course, ...], editors: list[Learner], today0: date
) -> dict[str, object]:
    """Render a learning path as the API's `@all` learning-path object."""
    h = path.h
    created_day = today0.toordinal() - 200 - (h >> 8) % 400
    modified_day = created_day + (h >> 20) % 150
    first = courses[path.courses[0]]
    sections = []
    order = 0
    for s, section in enumerate(path.sections):
        items = []
        for c in section:
            course = courses[c]
            order += 1
            items.append(
                {
                    "type": "course",
                    "id": course.id,
                    "url": f"{PORTAL_URL}/course/{course.slug}/",
                    "order": order,
                    "title": course.title,
                    "duration": estimated_length(course),
                    "resource_url": f"{PORTAL_URL}/api-2.0/courses/{course.id}/",
                }
            )
        sections.append(
            {
                "id": path.id * 10 + s,
                "title": words.PATH_SECTION_TITLES[(s + h) % len(words.PATH_SECTION_TITLES)],
                "order": s + 1,
                "items": items,
            }
        )
    n_editors = 1 + (h >> 30) % 2
    return {
        "_class": "learning_path",
        "id": path.id,
        "title": path.title,
        "description": (
            f"<p>A guided path through <strong>{len(path.courses)} courses</strong>, "
            f"starting with <em>{first.title}</em>.</p>"
        ),
        "url": f"{PORTAL_URL}/learning-paths/{path.id}/",
        "created": f"{date.fromordinal(created_day).isoformat()}T09:{(h >> 34) % 60:02d}:00Z",
        "last_modified": f"{date.fromordinal(modified_day).isoformat()}"
        f"T16:{(h >> 40) % 60:02d}:30Z",
        "editors": [
            {"id": e.user_id, "name": f"{e.name} {e.surname}", "email": e.email}
            for e in editors[(h >> 32) % max(1, len(editors)) :][:n_editors]
        ],
        "folders": [
            {
                "id": 900 + (h >> 44) % 5,
                "title": words.PATH_FOLDERS[(h >> 44) % len(words.PATH_FOLDERS)],
            }
        ],
        "locales": [{"locale": first.locale, "title": words.LOCALE_TITLES[first.locale]}],
        "sections": sections,
        "categories": sorted({courses[c].category for c in path.courses}),
        "is_pro_path": is_pro_path(path),
        "number_of_content_items": len(path.courses),
        "estimated_content_length": sum(estimated_length(courses[c]) for c in path.courses),
    }
