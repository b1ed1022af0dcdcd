"""Referrals (Mitteilungen an den ASD) and everything the ASD does with them."""
