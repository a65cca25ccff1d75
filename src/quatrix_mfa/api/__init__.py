"""HTTP layer: thin routers (parse, call core, shape the answer) and one error mapper."""
