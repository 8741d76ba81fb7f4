"""The streams: one small declaration per endpoint. Behaviour lives in the base classes."""

from __future__ import annotations

from tap_udemy_business.client import UdemyStream
from tap_udemy_business.reporting import ReportingStream


class CoursesStream(UdemyStream):
    """The organization's course catalog (Udemy courses and custom ones)."""

    name = "courses"
    path = "courses/list/"
    primary_keys = ("id",)
    record_class = "course"


class LearningPathsStream(UdemyStream):
    """Learning paths; organizations without the feature answer 403/404, skipped."""

    name = "learning_paths"
    path = "learning-paths/list/"
    primary_keys = ("id",)
    record_class = "learning_path"
    optional = True


class UserActivityStream(ReportingStream):
    """One row per learner and window: the learner's activity totals for that window."""

    name = "user_activity"
    path = "analytics/user-activity/"
    primary_keys = ("learner_key", "from_date")
    record_class = "aggregate_organization_user_activity"
    learner_facts = ("user_joined_date", "user_external_id", "lms_user_id")


class UserCourseActivityStream(ReportingStream):
    """One row per learner, course and window: its consumption, the course's state."""

    name = "user_course_activity"
    path = "analytics/user-course-activity/"
    primary_keys = ("learner_key", "course_id", "from_date")
    record_class = "user_course_activity"
    learner_facts = ("course_enroll_date", "user_external_id", "lms_user_id")


class UserProgressStream(ReportingStream):
    """One row per learner and lecture or quiz, read in blocks of days of activity."""

    name = "user_progress"
    path = "analytics/user-progress/"
    primary_keys = ("learner_key", "course_id", "item_id")
    record_class = "user_progress"
    learner_facts = ("item_start_time", "user_external_id", "lms_user_id")
    aggregate = False


class UserPathActivityStream(ReportingStream):
    """One row per learner, learning path and window; skipped without learning paths."""

    name = "user_path_activity"
    path = "analytics/user-path-activity/"
    primary_keys = ("learner_key", "path_id", "from_date")
    record_class = "user_path_activity"
    learner_facts = ("path_enrolled_date", "user_external_id", "lms_user_id")
    optional = True


STREAM_TYPES: tuple[type[UdemyStream], ...] = (
    CoursesStream,
    LearningPathsStream,
    UserActivityStream,
    UserCourseActivityStream,
    UserProgressStream,
    UserPathActivityStream,
)
