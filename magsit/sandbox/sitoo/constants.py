"""The Sitoo account's fixed ids, type and state codes, default field sets and limits (sitoo-api.md)."""

from __future__ import annotations

from decimal import Decimal

ACCOUNT_ID = 90001
ESHOP_ID = 1
API_ID = "90001-56"
PASSWORD = "sandbox-password"
SITE_GUID = "{5A1D0B7E-0000-4000-8000-000000090001}"

WAREHOUSE_FIFO = 10
WAREHOUSE_VIRTUAL = 20

TT_MOVE_IN = 10
TT_MOVE_OUT = 20
TT_SALES = 30  # [I] has orderdeliveryid + negative qty in the official example
TT_REFUND = 40  # [I] has orderdeliveryid + positive qty
TT_STOCKTAKING = 50
READ_ONLY_TRANSACTION_TYPES = (
    TT_SALES,
    TT_REFUND,
    TT_STOCKTAKING,
)  # "Sales, Refund and StockTaking are read only"

ORDER_OPEN, ORDER_CLOSED, ORDER_CANCELLED = 0, 10, 20
ORDER_STATE_NAMES = {ORDER_OPEN: "open", ORDER_CLOSED: "closed", ORDER_CANCELLED: "cancelled"}
PAYMENT_SUCCESSFUL = 20

# Default field sets of list endpoints, per the reference (§2.2, §7): fields not listed are only
# returned when asked for with ``fields=`` -- a client that forgets to ask must see them missing.
ORDER_DEFAULT_FIELDS = [
    "orderid",
    "email",
    "namefirst",
    "namelast",
    "company",
    "moneyfinal_net",
    "moneyfinal_vat",
    "moneytotal_gross_roundoff",
    "moneytotal_gross_all",
    "checkouttypename",
    "deliverytypename",
    "orderdate",
    "orderstateid",
    "paymentstateid",
    "ordertypeid",
    "registerid",
    "warehouseid",
    "datereserved",
    "orderitems",
    "payments",
]
PRODUCT_DEFAULT_FIELDS = [
    "productid",
    "sku",
    "datemodified",
    "active",
    "activepos",
    "vatid",
    "manufacturerid",
    "stockcountenable",
    "stockallowbackorder",
    "barcode",
    "moneyprice",
    "moneyfinalprice",
]
USER_DEFAULT_FIELDS = ["userid", "email", "namefirst", "namelast", "company", "datecreated", "datemodified"]

# Text fields of the order-write schema (§6): stored as given, "" when missing.
ORDER_TEXT_FIELDS = (
    "email",
    "namefirst",
    "namelast",
    "personalid",
    "company",
    "phone",
    "invoice_address",
    "invoice_address2",
    "invoice_zip",
    "invoice_city",
    "invoice_state",
    "invoice_countryid",
    "delivery_address",
    "delivery_address2",
    "delivery_zip",
    "delivery_city",
    "delivery_state",
    "delivery_countryid",
    "comment",
    "commentinternal",
    "customerref",
    "checkoutref",
)
# Scalar fields of the order-write schema (§6) a partial PUT may change.
ORDER_WRITABLE_SCALARS = frozenset(
    [
        *ORDER_TEXT_FIELDS,
        "ordertypeid",
        "externalid",
        "creditorderid",
        "orderdate",
        "orderstateid",
        "paymentstateid",
        "warehouseid",
        "datereserved",
        "currencycode",
        "reservedpayments",
    ]
)
MAX_TRANSACTION_BATCH = 1000
EVENT_BATCH = 10  # "an array which can contain up to 10 items"
RETRYABLE_EVENT_STATUSES = (429, 503, 504)

# VAT per product group (vatid); 2 is the default group on every system [C:CAT]; rates are Nordic.
VAT_RATES = {1: Decimal("0"), 2: Decimal("25"), 3: Decimal("12"), 4: Decimal("6")}

CENT = Decimal("0.01")
MILLI = Decimal("0.001")
