"""The coordinator's view: process metadata of every referral, never its content."""
