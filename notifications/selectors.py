from .models import Notification


def notifications_after(*, user_id, after=None, limit=None):
    queryset = Notification.objects.filter(user_id=user_id).order_by("id")
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    return queryset[:limit] if limit else queryset
