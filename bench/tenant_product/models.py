"""The tenant side of a product built on Diquis, for the upgrade bench (section 8): 38 models of an online
shop and its back office, the size of a real product's tenant app. Only its schema matters; no code uses it."""

from django.db import models


class Record(models.Model):
    """What every table of the app has; each model adds its references and its own fields."""

    name = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    notes = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def __str__(self):
        return self.name


class Category(Record):
    pass


class Product(Record):
    category = models.ForeignKey("Category", on_delete=models.CASCADE, related_name="+")
    sku = models.CharField(max_length=40, blank=True, default="", db_index=True)


class Customer(Record):
    phone = models.CharField(max_length=32, blank=True, default="")


class Address(Record):
    customer = models.ForeignKey("Customer", on_delete=models.CASCADE, related_name="+")


class Warehouse(Record):
    pass


class StockItem(Record):
    product = models.ForeignKey("Product", on_delete=models.CASCADE, related_name="+")


class Supplier(Record):
    pass


class PurchaseOrder(Record):
    supplier = models.ForeignKey("Supplier", on_delete=models.CASCADE, related_name="+")


class PurchaseLine(Record):
    purchase_order = models.ForeignKey("PurchaseOrder", on_delete=models.CASCADE, related_name="+")


class Order(Record):
    customer = models.ForeignKey("Customer", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, default="open", db_index=True)


class OrderLine(Record):
    order = models.ForeignKey("Order", on_delete=models.CASCADE, related_name="+")


class Shipment(Record):
    order = models.ForeignKey("Order", on_delete=models.CASCADE, related_name="+")


class ShipmentItem(Record):
    shipment = models.ForeignKey("Shipment", on_delete=models.CASCADE, related_name="+")


class Invoice(Record):
    order = models.ForeignKey("Order", on_delete=models.CASCADE, related_name="+")
    number = models.CharField(max_length=30, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["number"], name="tp_invoice_number_idx")]


class InvoiceLine(Record):
    invoice = models.ForeignKey("Invoice", on_delete=models.CASCADE, related_name="+")


class Payment(Record):
    invoice = models.ForeignKey("Invoice", on_delete=models.CASCADE, related_name="+")


class Refund(Record):
    payment = models.ForeignKey("Payment", on_delete=models.CASCADE, related_name="+")


class Coupon(Record):
    code = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["code"], name="tp_coupon_code_uniq")]


class Currency(Record):
    pass


class PriceList(Record):
    currency = models.ForeignKey("Currency", on_delete=models.CASCADE, related_name="+")


class PriceListItem(Record):
    price_list = models.ForeignKey("PriceList", on_delete=models.CASCADE, related_name="+")


class TaxRate(Record):
    pass


class Review(Record):
    product = models.ForeignKey("Product", on_delete=models.CASCADE, related_name="+")


class Wishlist(Record):
    customer = models.ForeignKey("Customer", on_delete=models.CASCADE, related_name="+")


class WishlistItem(Record):
    wishlist = models.ForeignKey("Wishlist", on_delete=models.CASCADE, related_name="+")


class Cart(Record):
    customer = models.ForeignKey("Customer", on_delete=models.CASCADE, related_name="+")


class CartItem(Record):
    cart = models.ForeignKey("Cart", on_delete=models.CASCADE, related_name="+")


class SubscriptionPlan(Record):
    pass


class Subscription(Record):
    subscription_plan = models.ForeignKey("SubscriptionPlan", on_delete=models.CASCADE, related_name="+")


class Ticket(Record):
    customer = models.ForeignKey("Customer", on_delete=models.CASCADE, related_name="+")
    priority = models.PositiveSmallIntegerField(default=3)


class TicketMessage(Record):
    ticket = models.ForeignKey("Ticket", on_delete=models.CASCADE, related_name="+")


class Project(Record):
    pass


class Task(Record):
    project = models.ForeignKey("Project", on_delete=models.CASCADE, related_name="+")
    due_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["due_at"], name="tp_task_due_idx")]


class TimeEntry(Record):
    task = models.ForeignKey("Task", on_delete=models.CASCADE, related_name="+")


class Document(Record):
    project = models.ForeignKey("Project", on_delete=models.CASCADE, related_name="+")


class Tag(Record):
    pass


class AuditEntry(Record):
    pass


class Setting(Record):
    pass
