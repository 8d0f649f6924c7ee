from .models import Notification


def notifications_after(*, user_id, after=None, limit=None):
    queryset = Notification.objects.filter(user_id=user_id).order_by("id")
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    return queryset[:limit] if limit else queryset


def previous_notification_id(*, user_id, before):
    """The id of the user's notification just before `before` (None for the first): what a socket that saw it
    last may take the next push without a gap. Committed already: a user's ids are taken in commit order
    (services.wait_for_earlier_notifications)."""
    earlier = Notification.objects.filter(user_id=user_id, id__lt=before).order_by("-id")
    return earlier.values_list("id", flat=True).first()
