"""The contact directory: whom to call at a school, at the ASD, and in the InsoFa pool."""
