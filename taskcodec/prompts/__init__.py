"""Prompt templates live here as files; the hash of a rendered template is the
prompt version stored with each policy. The offline planner's version is the
hash of its vocabulary (see ``taskcodec.agents.planner.planner_version``)."""
