from django.db import models


class Label(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self):
        return self.name


class Note(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    pinned = models.BooleanField(default=False)
    created_on = models.DateTimeField(auto_now_add=True)
    labels = models.ManyToManyField(Label, blank=True, related_name="notes")

    class Meta:
        indexes = [models.Index(fields=["pinned", "-created_on"], name="tenant_note_pinned_idx")]

    def __str__(self):
        return self.title
