"""Everything that creates jobs."""
