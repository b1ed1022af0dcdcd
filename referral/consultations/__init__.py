"""Fachberatung by an insoweit erfahrene Fachkraft (§ 4 Abs. 2 KKG): pseudonymised, before any referral."""
