from django.db import models


class Notification(models.Model):
    """A notification as the user will see it. Persisted before it is pushed: the websocket is at-most-once,
    this row makes delivery at-least-once (clients replay with `?since=<id>`)."""

    id = models.BigAutoField(primary_key=True)
    # Users may live in a tenant's own database, so this is the user's id, not a foreign key.
    user_id = models.UUIDField(db_index=True)
    event = models.CharField(max_length=100)
    data = models.JSONField(default=dict)
    created_on = models.DateTimeField(auto_now_add=True)
    read = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["user_id", "id"])]

    def __str__(self):
        return f"#{self.id} {self.event} for {self.user_id}"

    def frame(self):
        return {"id": self.id, "event": self.event, "data": self.data}
