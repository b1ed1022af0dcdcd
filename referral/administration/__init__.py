"""Administration: organisation and users; never case content."""
