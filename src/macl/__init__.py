"""macl."""
