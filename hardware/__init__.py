"""Edge box hardware profiles and sizing (issue "# 5")."""
