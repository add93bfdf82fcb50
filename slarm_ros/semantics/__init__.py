"""Language-aligned semantics: text encoder, query validation, scores."""
