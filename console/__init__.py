"""Staff web console (review queue, home visits, roster, reports)."""
