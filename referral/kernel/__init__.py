"""What every feature shares: the form toolkit, enum columns, vocabulary base, settings, working days, upsert.

Imports run one way: features import the kernel, the kernel imports no feature (tests/test_import_direction.py).
"""
