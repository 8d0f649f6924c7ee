"""Which functions may run as durable jobs, and what happens when one has failed for the last time."""

from django.utils.module_loading import import_string


def durable_task(*, on_final_failure=None):
    """Mark a function as a durable job, called with keyword arguments only. `on_final_failure(error,
    **kwargs)` runs once, after the last attempt, with the job's own keyword arguments."""

    def mark(function):
        function.durable_task_name = f"{function.__module__}.{function.__qualname__}"
        function.on_final_failure = on_final_failure
        return function

    return mark


def task_name(function):
    name = getattr(function, "durable_task_name", None)
    if name is None:
        raise TypeError(f"{function!r} is not a @durable_task")
    return name


def operation_name(task):
    """A task's stored name without its module: what logs, metrics and the admin call the operation."""
    return task.rsplit(".", 1)[-1]


def resolve(name):
    """The function behind a stored name; only @durable_task functions, whatever the row says."""
    function = import_string(name)
    if getattr(function, "durable_task_name", None) != name:
        raise TypeError(f"{name} is not a @durable_task")
    return function
