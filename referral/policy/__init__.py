"""Who may do what: the one place for authorization.

- roles.py: the role sets, and `require_roles`, the gate of a page or a blueprint;
- school_side.py: the school side's rule (authors and school leads), for referrals and consultations;
- referrals.py, consultations.py, directory.py: per object, the questions (`may`, `can_*`, `is_*`) and
  the list scopes in SQL, which express the same rules;
- navigation.py: the menu and the start page, built from the gates.

Templates ask these rules (through the view's context or the globals that templating.py registers)
and never name a role themselves.
"""
