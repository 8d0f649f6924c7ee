from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tenant_product", "0022_coupon_code")]

    # Nullable: the model of today does not know the column and keeps writing rows without it.
    operations = [
        migrations.AddField("order", "external_reference", models.CharField(max_length=64, null=True, blank=True)),
        migrations.AddIndex("order", models.Index(fields=["external_reference"], name="tp_order_external_ref_idx")),
    ]
