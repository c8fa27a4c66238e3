"""Function views by page area: each parses its input, reads through selectors (or calls one
service), and renders a page, or its fragment when htmx asks."""
