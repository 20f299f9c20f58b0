"""Fault injection for tests: a TCP proxy that breaks connections on cue (see ``proxy``)."""
