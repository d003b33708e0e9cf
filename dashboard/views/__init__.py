"""HTML pages: each view parses its input, calls services or selectors, and renders."""
