"""One builder per report section: each reads records and returns a frozen view dataclass (no HTML).

``view.build_view`` calls them in page order; the template lays each out (templates/sections/).
"""
