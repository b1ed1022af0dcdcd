"""The evaluation of the model project (coordinator) and the district overview (ASD lead)."""
