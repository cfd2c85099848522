"""What a dry run says the real run would write: one style (magsit.flow.would) for every flow."""

from magsit.flow import plural, would, would_counts
from magsit.sync.cancellations import EDITED, Decision
from magsit.sync.fulfilment import FulfilmentPlan
from magsit.sync.orderpayload import OrderPlan
from magsit.sync.orders import Action, OrdersPlan
from magsit.sync.reservations import Renewal


def test_plural_and_the_would_line():
    assert [plural(1, "order"), plural(12, "order"), plural(4, "delivery"), plural(2, "key"), plural(0, "credit memo")] == [
        "1 order", "12 orders", "4 deliveries", "2 keys", "0 credit memos"]  # fmt: skip
    doings = (("to_push", 12, "push", "order"), ("to_adopt", 0, "adopt", "order"), ("to_ship", 4, "ship", "delivery"))
    assert would(*doings, notes={"to_push": "3 new", "to_adopt": "never shown"}) == "would push 12 orders (3 new), ship 4 deliveries"
    assert would_counts(*doings) == {"to_push": 12, "to_ship": 4}  # zeros left out, as a real run's counts
    assert would(("to_push", 0, "push", "order")) == "would write nothing"


def _create(increment_id: str, email: str) -> Action:
    plan = OrderPlan(increment_id, 1, increment_id, 1, False, email, [], {"orderitems": []})
    return Action("create", increment_id, 1, plan=plan)


def test_push_orders_preview_counts_orders_and_the_customers_it_would_look_up_or_create():
    actions = [_create("1", "known@example.com"), _create("2", "new@example.com"), _create("3", "new@example.com"),
               _create("4", ""), Action("adopt", "5", 5, sitoo_order={"orderid": 9}), Action("skip", "6", 6)]
    preview = OrdersPlan(actions, {"7": "already in Sitoo"}, set(), 6, linked_emails={"known@example.com"}).preview()
    assert preview.counts == {"planned": 6, "skipped": 1, "to_push": 4, "to_adopt": 1, "customers_unlinked": 1}
    assert preview.summary[-1] == ("would push 4 orders (1 customer e-mail not linked to a Sitoo customer yet: found "
                                   "there or created), adopt 1 order (already in Sitoo: only magsit's mapping is written)")


def test_fulfilment_preview_counts_sitoo_cancellations_renewals_and_deliveries_left_waiting():
    plan = FulfilmentPlan(
        checked=3,
        cancellations=[Decision("cancel", "1", "10001", "canceled"), Decision("delivered", "2", "10002", "closed", 1, 2)],
        renewals=[Renewal("3", "10003", until=2_000_000_000, was=1_900_000_000)],
        waiting=[{"action": "wait", "increment_id": "3", "delivery": "7"}],
    )
    preview = plan.preview()
    assert preview.counts == {"orders": 3, "to_cancel_in_sitoo": 1, "to_renew": 1, "waiting": 1}
    assert preview.summary[1] == ("would cancel 1 Sitoo order (cancelled, refunded or replaced by an edit in Magento "
                                  "before any delivery), renew 1 Sitoo reservation")
    assert preview.summary[2].startswith("1 delivery left for a later run")
    assert [p.kind for p in preview.problems] == ["cancelled_after_delivery"]


def test_fulfilment_preview_lists_the_finance_task_the_cancel_of_an_edited_original_raises():
    edited = Decision("cancel", "000000007", "10007", EDITED, ordered=1, replaced_by="000000007-1")
    preview = FulfilmentPlan(checked=1, cancellations=[edited]).preview()
    assert preview.counts == {"orders": 1, "to_cancel_in_sitoo": 1}
    assert [(p.kind, p.owner, p.key) for p in preview.problems] == [("edited_original_still_open", "finance", "000000007")]


def test_sync_customers_preview_does_not_count_magento_creates_the_setting_keeps_back_as_writes():
    from magsit.report import _is_write
    from magsit.sync.customerplan import CustomerAction
    from magsit.sync.customers import Plan

    actions = [CustomerAction("create_sitoo", "a@example.com"), CustomerAction("create_magento", "pos@example.com")]
    kept_back = Plan(actions, [], None, [], "", [], {}, welcome_email=False).preview()
    assert [_is_write(row) for row in kept_back.rows] == [True, False]
    assert kept_back.summary[-2] == "would create 1 Sitoo customer"
    sent = Plan(actions, [], None, [], "", [], {}, welcome_email=True).preview()
    assert [_is_write(row) for row in sent.rows] == [True, True]
