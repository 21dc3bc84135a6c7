"""An organisation's people, run by its customer admins (and by vendor staff with
`contracts.manage_people`): invitations (invitations.py), roles and deactivation (members.py),
what the pages read (selectors.py). Every change is audited; the last active admin of an
organisation can be neither demoted nor deactivated."""


class PeopleError(Exception):
    """A refused change, said so that the person can act on it; `field` names the form field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field
