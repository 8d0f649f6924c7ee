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


def latest_notification_id(*, user_id):
    """The id of the user's newest notification (None without any): where a socket opened without `?since=`
    starts, so that a push it gets late, after a later one, is still sent (by the replay of the gap) in order."""
    newest = Notification.objects.filter(user_id=user_id).order_by("-id")
    return newest.values_list("id", flat=True).first()
