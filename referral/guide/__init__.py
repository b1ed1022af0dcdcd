"""The guide ("Leitfaden", issue 17): the agreed process in plain German, edited by the coordinator in versions."""
