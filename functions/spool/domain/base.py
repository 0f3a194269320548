"""The base of every pydantic model of Spool's (domain/models.py, storage.py, events.py, ...): validators are
built on first use, not when a module loads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Every model builds its validator on first use rather than when its module loads: a request builds only
    the models it validates or answers with (an event's never builds the endpoint models), and building them all
    was a third of the api's import time (make bench, B3). Subclasses' configs add to this one."""

    model_config = ConfigDict(defer_build=True)


def build_validators() -> None:
    """Build the validator of every model loaded so far (before a SnapStart snapshot, handlers/snapstart.py)."""
    pending: list[type[BaseModel]] = [Model]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model is not Model:
            model.model_rebuild(force=True)
