"""Which fields each endpoint's records carry: `@all`, and the `@min` and `@default` sets.

These lists are the model's own (`sandbox` dialect) contract with the API guide; `dialects.py`
maps them to the other dialects' names. Kept apart from the data so that a field added to an
endpoint is a one-line change here, whatever generates its values.
"""

from __future__ import annotations

from typing import Final

from tap_udemy_business.sandbox.dialects import SANDBOX_CLASSES

ENDPOINTS: Final = (
    "courses",
    "learning_paths",
    "user_activity",
    "user_course_activity",
    "user_progress",
    "user_path_activity",
)
#: The `_class` of each endpoint's records in the model's own (`sandbox`) dialect.
CLASS_NAMES: Final[dict[str, str]] = SANDBOX_CLASSES
_USER = [
    "lms_user_id",
    "user_email",
    "user_name",
    "user_surname",
    "user_role",
    "user_external_id",
    "user_is_deactivated",
]
_COURSE = ["course_id", "course_title", "course_category", "course_subcategory"]
_ALL: dict[str, list[str]] = {
    "courses": [
        "_class",
        "id",
        "title",
        "headline",
        "description",
        "url",
        "estimated_content_length",
        "categories",
        "topics",
        "num_lectures",
        "num_videos",
        "num_quizzes",
        "promo_video_url",
        "video_preview_urls",
        "instructors",
        "requirements",
        "what_you_will_learn",
        "images",
        "locale",
        "level",
        "is_custom",
        "is_imported",
        "accreditations",
        "last_update_date",
    ],
    "learning_paths": [
        "_class",
        "id",
        "title",
        "description",
        "url",
        "created",
        "last_modified",
        "editors",
        "folders",
        "locales",
        "sections",
        "categories",
        "is_pro_path",
        "number_of_content_items",
        "estimated_content_length",
    ],
    "user_activity": [
        "_class",
        "id",
        *_USER,
        "user_joined_date",
        "report_date",
        "num_new_enrolled_courses",
        "num_new_assigned_courses",
        "num_new_started_courses",
        "num_completed_courses",
        "num_completed_lectures",
        "num_video_consumed_minutes",
        "num_web_visited_days",
        "last_date_visit",
    ],
    "user_course_activity": [
        "_class",
        "user_id",
        *_USER,
        *_COURSE,
        "course_duration",
        "completion_ratio",
        "num_video_consumed_minutes",
        "course_enroll_date",
        "course_start_date",
        "course_completion_date",
        "course_first_completion_date",
        "course_last_accessed_date",
        "last_activity_date",
        "is_assigned",
        "assigned_by",
    ],
    "user_progress": [
        "_class",
        "user_id",
        *_USER,
        *_COURSE,
        "item_id",
        "item_type",
        "item_title",
        "item_start_time",
        "item_completion_time",
        "item_completion_ratio",
        "item_final_result",
        "course_last_accessed_date",
    ],
    "user_path_activity": [
        "_class",
        "user_id",
        *_USER,
        "path_id",
        "path_title",
        "is_pro_path",
        "is_private_path",
        "completion_ratio",
        "path_enrolled_date",
        "path_consumed_minutes",
        "path_completion_date",
        "is_path_assigned",
        "path_first_activity_date",
        "path_last_activity_date",
    ],
}
_MIN: dict[str, list[str]] = {
    "courses": ["_class", "id", "title"],
    "learning_paths": ["_class", "id", "title"],
    "user_activity": ["_class", "id", "user_email"],
    "user_course_activity": ["_class", "user_id", "user_email", "course_id", "course_title"],
    "user_progress": ["_class", "user_id", "user_email", "course_id", "item_id", "item_title"],
    "user_path_activity": ["_class", "user_id", "user_email", "path_id", "path_title"],
}
_DEFAULT_EXTRA: dict[str, list[str]] = {
    "courses": [
        "url",
        "estimated_content_length",
        "categories",
        "num_lectures",
        "instructors",
        "locale",
        "level",
        "last_update_date",
    ],
    "learning_paths": [
        "url",
        "created",
        "last_modified",
        "categories",
        "number_of_content_items",
        "estimated_content_length",
    ],
    "user_activity": [
        "user_name",
        "user_surname",
        "user_role",
        "report_date",
        "num_new_enrolled_courses",
        "num_completed_courses",
        "num_video_consumed_minutes",
        "last_date_visit",
    ],
    "user_course_activity": [
        "user_role",
        "completion_ratio",
        "num_video_consumed_minutes",
        "course_enroll_date",
        "course_completion_date",
        "is_assigned",
    ],
    "user_progress": [
        "item_type",
        "item_start_time",
        "item_completion_time",
        "item_completion_ratio",
        "item_final_result",
    ],
    "user_path_activity": [
        "completion_ratio",
        "path_enrolled_date",
        "path_consumed_minutes",
        "path_completion_date",
        "is_path_assigned",
    ],
}
FIELD_SETS: Final[dict[str, dict[str, list[str]]]] = {
    endpoint: {
        "@min": list(_MIN[endpoint]),
        # @default keeps the @all order so a partial record reads like a full one.
        "@default": [f for f in fields if f in _MIN[endpoint] or f in _DEFAULT_EXTRA[endpoint]],
        "@all": list(fields),
    }
    for endpoint, fields in _ALL.items()
}
