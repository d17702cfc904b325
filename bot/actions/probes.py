"""身份核对的次数限制：防止有人拿一个身份证号一遍遍猜出登记的姓名。

Counted in the stores' rate limiter (Redis when configured): the checks of one chat account
an hour, and the misses on one ID number a day *from every sender* — a REST or web-chat
sender id is the client's choice, so a limit per sender alone would start afresh each time.
The ID number is never a key: a hash of it is. A refused check is written to the audit log
(masked ID) for staff.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bot.actions.context import ActionContext
from services import audit
from services.accounts import actor_for
from services.idcard import mask_id_number, normalise_id_number
from services.models import ChannelAccount


@dataclass
class IdentityProbeGuard:
    scope: ActionContext
    account: ChannelAccount
    id_number: str

    @property
    def _account_key(self) -> str:
        return f"identity:account:{self.account.id}"

    @property
    def _id_key(self) -> str:
        digest = hashlib.sha256(normalise_id_number(self.id_number).encode()).hexdigest()
        return f"identity:misses:{digest[:24]}"

    def refusal(self, session) -> str | None:
        """Why this check may not run now (and the refusal logged), or None: it may.

        Counts the check against the account.
        """
        limits, rate = self.scope.check_limits, self.scope.stores.rate_limits
        window = limits.account_window.total_seconds()
        if not rate.allow(self._account_key, limits.per_account, window):
            return self._refuse(session, "account", limits.per_account)
        if rate.used(self._id_key) >= limits.misses_per_id:
            return self._refuse(session, "id_number", limits.misses_per_id)
        return None

    def record_miss(self) -> bool:
        """Count a wrong name for this ID number; True when it was not the first one."""
        limits, rate = self.scope.check_limits, self.scope.stores.rate_limits
        earlier = rate.used(self._id_key)
        rate.allow(self._id_key, limits.misses_per_id, limits.id_window.total_seconds())
        return earlier > 0

    def _refuse(self, session, limited: str, limit: int) -> str:
        audit.record(
            session,
            actor_for(self.account),
            "identity.probe_blocked",
            "id_number",
            mask_id_number(self.id_number),
            {"limited": limited, "limit": limit, "channel": self.account.channel},
            at=self.scope.clock.utcnow(),
        )
        return limited
