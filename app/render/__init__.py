"""Pictures drawn on the server: boards posted into branch groups."""
