"""Imports every model module so ``Base.metadata`` is complete (Alembic, tests)."""

from fundcircle.audit import models as _audit  # noqa: F401
from fundcircle.auth import models as _auth  # noqa: F401
from fundcircle.circles import models as _circles  # noqa: F401
from fundcircle.contributions import models as _contributions  # noqa: F401
from fundcircle.deliberation import models as _deliberation  # noqa: F401
from fundcircle.ledger import models as _ledger  # noqa: F401
from fundcircle.notifications import models as _notifications  # noqa: F401
from fundcircle.proposals import models as _proposals  # noqa: F401
from fundcircle.rounds import models as _rounds  # noqa: F401
from fundcircle.treasury import models as _treasury  # noqa: F401
from fundcircle.voting import models as _voting  # noqa: F401
from fundcircle.db import Base  # noqa: F401

# Feature packages added later import their models here too.
