"""Stream matcher: checks plate reads against hotlists and publishes hits (issue "# 2")."""
