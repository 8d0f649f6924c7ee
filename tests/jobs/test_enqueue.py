"""Jobs take keyword arguments, stored by name on the durable record."""

import pytest
from django.db import transaction

from jobs.enqueue import enqueue
from jobs.models import Job
from jobs.registry import durable_task


@durable_task()
def greet(*, name, times=1):
    return name * times


pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_stores_its_arguments_by_name():
    with transaction.atomic():
        job = enqueue(greet, subject="greeting", name="ada", times=2)
    assert Job.objects.get(pk=job.pk).kwargs == {"name": "ada", "times": 2}


@pytest.mark.parametrize("arguments", [{}, {"name": "ada", "colour": "red"}])
def test_arguments_that_do_not_fit_the_task_are_refused_in_the_request_and_record_nothing(arguments):
    with pytest.raises(TypeError), transaction.atomic():
        enqueue(greet, subject="greeting", **arguments)
    assert not Job.objects.filter(subject="greeting").exists()
