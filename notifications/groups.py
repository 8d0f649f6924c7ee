"""The one place that names Channels groups."""


def user_group(user_id):
    return f"user.{user_id}"
