"""Anonymous short surveys (issue 17): after a referral's feedback and closing, and once a quarter.

Anonymity by construction: an answer row carries only the question set and its version, the role kind
(school / ASD), the district, the quarter and the guide version; the marker that an invitation is done
(answered or declined, not told apart) is kept in a table of its own without any common key
(models.py, services.py)."""
