"""Tools: grounding backends (what is where), later machine-task tools and reconstruction."""
