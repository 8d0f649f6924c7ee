"""rq-dashboard's data of one job (`/rq/0/data/job/<id>.json`, behind its job page), for a job that waits on
others, under rq 3.

Why: rq-dashboard 0.9 decodes each of `Job.dependency_ids` as bytes, and rq 3 hands them over as text already,
so the page of any job enqueued with `depends_on` (a deferred job, and any job after it) was a 500 ("'str'
object has no attribute 'decode'"; fixed upstream after 0.9.0, rq-dashboard's issue 522). rq-dashboard's own
view still answers for every other job. Remove this module once a release of rq-dashboard with the fix is
pinned (tests/e2e/test_django_rq_pages.py opens a deferred job's data).
"""

import functools
import json

from flask import current_app, jsonify
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq_dashboard import web

ENDPOINT = "rq_dashboard.job_info"


def fetch(job_id):
    return Job.fetch(job_id, serializer=web.config.serializer, connection=current_app.redis_conn)


def dependency_status(dependency_id):
    """As rq-dashboard words it: the job depended on is still in Redis ("active") or not ("expired")."""
    try:
        fetch(dependency_id)
    except NoSuchJobError:
        return "expired"
    return "active"


def job_data(job):
    """What rq-dashboard's view answers for `job`, its dependencies read as rq 3 gives them."""
    encoder = current_app.config.get("RQ_DASHBOARD_JSON_ENCODER", json.JSONEncoder)
    dependency_ids = job.dependency_ids
    return {
        **web.serialize_job(job),
        "enqueued_at": web.serialize_date(job.enqueued_at),
        "origin": job.origin,
        "status": job.get_status(),
        "result": job.return_value(),
        "metadata": json.dumps(job.get_meta(), cls=encoder),
        "depends_on": dependency_ids,
        "depends_on_status": [dependency_status(dependency_id) for dependency_id in dependency_ids],
    }


def job_info_under_rq3(original):
    """rq-dashboard's job data view (`original`), answering for a job with dependencies too."""

    @functools.wraps(original)
    def job_info(instance_number, job_id):
        job = fetch(job_id)
        if not job.dependency_ids:
            return original(instance_number=instance_number, job_id=job_id)
        return jsonify(**job_data(job)), {"Cache-Control": "no-store"}

    return job_info


def install(app):
    """Put the view above in place of rq-dashboard's own in `app` (its Flask app)."""
    app.view_functions[ENDPOINT] = job_info_under_rq3(app.view_functions[ENDPOINT])
