"""Products and users (customers): add, look up, update (sitoo-api.md §4, §7)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from magsit.sandbox.sitoo.constants import VAT_RATES
from magsit.sandbox.sitoo.errors import ApiError, found
from magsit.sandbox.sitoo.formats import money
from magsit.sandbox.sitoo.state.account import blank_address
from magsit.sandbox.sitoo.state.events import EventEmitter


class Catalog(EventEmitter):
    """Products (looked up by sku) and users (looked up by e-mail)."""

    # ---- products -------------------------------------------------------------------------------

    def add_product(
        self,
        sku: str,
        title: str,
        price: Any,
        vatid: int = 2,
        active: bool = True,
        activepos: bool = True,
        barcode: str | None = None,
        variantparentid: int | None = None,
        **extra: Any,
    ) -> int:
        with self.lock:
            if self.product_by_sku(sku) is not None:
                raise ValueError(f"sku {sku} already exists")
            productid = self._next("product")
            now = self.clock()
            product = {
                "productid": productid,
                "sku": sku,
                "skumanufacturer": "",
                "title": title,
                "descriptionshort": "",
                "description": "",
                "moneyprice": money(price),
                "moneypriceorg": "0.00",
                "moneypricein": "0.00",
                "moneyfinalprice": money(price),
                "vatid": vatid,
                "vatvalue": int(VAT_RATES.get(vatid, Decimal(25))),
                "productgrouptype": 0,
                "active": active,
                "activepos": activepos,
                "stockcountenable": True,
                "stockallowbackorder": False,
                "barcode": barcode or "",
                "barcodealiases": [],
                "allowdecimals": False,
                "unitlabel": "",
                "categories": [],
                "defaultcategoryid": None,
                "manufacturerid": None,
                "variantparentid": variantparentid,
                "variant": [],
                "custom1": "",
                "custom2": "",
                "custom3": "",
                "custom4": "",
                "custom5": "",
                "customattributes": {},
                "datecreated": now,
                "datemodified": now,
            }
            product.update(extra)
            if "moneyprice" in extra:
                product["moneyprice"] = product["moneyfinalprice"] = money(extra["moneyprice"])
            self.products[productid] = product
            return productid

    def product_by_sku(self, sku: str) -> dict[str, Any] | None:
        with self.lock:
            for product in self.products.values():
                if product["sku"] == sku:
                    return product
            return None

    # ---- users ----------------------------------------------------------------------------------

    def email_matches(self, stored: Any, asked: str) -> bool:
        """The ``email`` filter and the "Must be unique" rule: exact or case-insensitive is unstated
        (sitoo-api.md §7, "assume exact"); ``email_match`` switches the sandbox between the two."""
        if self.email_match == "casefold":
            return str(stored or "").strip().casefold() == str(asked or "").strip().casefold()
        return stored == asked

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            for user in self.users.values():
                if self.email_matches(user["email"], email):
                    return user
            return None

    def add_user(self, email: str, namefirst: str = "", namelast: str = "", **extra: Any) -> str:
        with self.lock:
            if not email:
                raise ValueError("email is required")
            if self.user_by_email(email) is not None:
                raise ValueError(f"A user with email {email} already exists")
            userid = "{" + str(uuid.uuid4()).upper() + "}"
            now = self.clock()
            user = {
                "userid": userid,
                "email": email,
                "namefirst": namefirst,
                "namelast": namelast,
                "personalid": "",
                "externalid": None,
                "company": "",
                "department": "",
                "companyid": "",
                **blank_address(""),
                "phone": "",
                "mobile": "",
                "notes": "",
                "customernumber": "",
                "pricelistid": None,
                "role": None,
                "datecreated": now,
                "datemodified": now,
            }
            user.update(
                {k: v for k, v in extra.items() if k not in ("userid", "datecreated", "datemodified", "pin")}
            )
            self.users[userid] = user
            return userid

    def update_user(self, userid: str, changes: dict[str, Any]) -> None:
        with self.lock:
            user = found(self.users, userid, "User")
            email = changes.get("email")
            if email is not None and email != user["email"]:
                other = self.user_by_email(email)
                if other is not None:
                    raise ApiError(400, f"A user with email {email} already exists")
            for key, value in changes.items():
                if key in ("userid", "datecreated", "datemodified", "pin"):
                    continue
                user[key] = value
            user["datemodified"] = self.clock()
