#!/usr/bin/env bash
# The demo: the sandbox portal's simulated data into an embedded DuckDB file through Meltano,
# then a first query. No account, no credentials, no server. Writes only git-ignored paths.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .meltano-venv/bin/meltano ]; then
  echo "Installing Meltano into .meltano-venv ..."
  python3 -m venv .meltano-venv
  echo '*' > .meltano-venv/.gitignore
  .meltano-venv/bin/pip install --quiet --upgrade pip
  .meltano-venv/bin/pip install --quiet --require-hashes -r requirements-e2e.lock
fi
export PATH="$PWD/.meltano-venv/bin:$PATH"
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false

meltano install
meltano run tap-udemy-business target-duckdb

echo
echo "Loaded into .meltano/warehouse.duckdb (schema udemy_business). The five courses most watched:"
meltano invoke duckdb .meltano/warehouse.duckdb -c "
SELECT c.title AS course,
       count(DISTINCT a.learner_key) AS learners,
       round(sum(a.num_video_consumed_minutes) / 60, 1) AS hours_watched,
       count(DISTINCT a.learner_key) FILTER (WHERE a.course_completion_date IS NOT NULL) AS completed
FROM udemy_business.user_course_activity AS a
JOIN udemy_business.courses AS c ON c.id = a.course_id
GROUP BY c.title
ORDER BY hours_watched DESC, course
LIMIT 5"
echo "Explore it yourself: .meltano-venv/bin/meltano invoke duckdb .meltano/warehouse.duckdb"
